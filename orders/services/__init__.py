"""Writes for the catalog, live sessions and orders (``<entity>_<action>``, keyword-only).

Every order state change locks the order row, checks the one status table (``orders.status``),
saves, writes the order's history, publishes a partner event and calls the ledger, in one
transaction. See each module for the details.
"""

from orders.services.catalog import product_create, product_update
from orders.services.live_sessions import (
    live_session_create,
    live_session_end,
    live_session_start,
    live_session_update,
)
from orders.services.orders import (
    order_accept,
    order_cancel,
    order_close_return_windows,
    order_create,
    order_deliver,
    order_expire_due,
    order_pay,
    order_ship,
)
from orders.services.refunds import refund_create

__all__ = [
    "live_session_create",
    "live_session_end",
    "live_session_start",
    "live_session_update",
    "order_accept",
    "order_cancel",
    "order_close_return_windows",
    "order_create",
    "order_deliver",
    "order_expire_due",
    "order_pay",
    "order_ship",
    "product_create",
    "product_update",
    "refund_create",
]
