"""Writes for the catalog, live sessions and orders (``<entity>_<action>``, keyword-only).

Every order state change locks the order row, checks the one status table (``orders.status``),
saves, writes the order's history, publishes a partner event and calls the ledger, in one
transaction. See each module for the details: ``placing`` (create), ``payment`` (pay),
``moves`` (accept, ship, deliver, cancel), ``expiry`` (expiry and the return windows' close),
``refunds``, ``catalog``, ``live_sessions``, ``stock``.
"""

from orders.services.catalog import product_create, product_update
from orders.services.expiry import order_close_return_windows, order_expire_due
from orders.services.live_sessions import (
    live_session_create,
    live_session_end,
    live_session_start,
    live_session_update,
)
from orders.services.moves import order_accept, order_cancel, order_deliver, order_ship
from orders.services.payment import order_pay
from orders.services.placing import order_create
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
