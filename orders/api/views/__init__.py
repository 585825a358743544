"""Catalog, live session and order endpoints.

Each view reads its input with a shape-only serializer, calls one service, and answers with the
output serializer. Who may call each action comes from ``allow(...)``; for order moves it comes
from the status table itself (``orders.status.ORDER_MOVES``), so the table is the one place that
says both what an action does and who may do it.

One module per concern: ``catalog`` (products), ``live_sessions``, ``orders`` (placing, moves,
history), ``refunds`` (an order's refunds, mixed into ``OrderViewSet``); ``common`` holds what
they share.
"""

from orders.api.views.catalog import ProductViewSet
from orders.api.views.live_sessions import LiveSessionViewSet
from orders.api.views.orders import OrderViewSet

__all__ = ["LiveSessionViewSet", "OrderViewSet", "ProductViewSet"]
