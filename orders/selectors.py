"""Reads for the catalog, live sessions and orders, scoped to the caller and already joined.

Each list runs a fixed number of queries whatever its length: one for the rows and one per
prefetched relation.
"""

from django.db.models import Prefetch, QuerySet

from orders.models import LiveSession, Order, OrderEvent, Product, Refund
from partners.models import Partner


def product_list(*, caller) -> QuerySet[Product]:
    return Product.objects.visible_to(caller)


def live_session_list(*, caller) -> QuerySet[LiveSession]:
    return LiveSession.objects.visible_to(caller).prefetch_related(
        Prefetch("products", queryset=Product.objects.only("id")),
        Prefetch("host_apps", queryset=Partner.objects.only("id")),
    )


def order_list(*, caller) -> QuerySet[Order]:
    return Order.objects.visible_to(caller).prefetch_related("lines")


def order_refund_list(*, order: Order) -> QuerySet[Refund]:
    return Refund.objects.filter(order=order).select_related("order").prefetch_related("lines")


def order_event_list(*, order: Order) -> QuerySet[OrderEvent]:
    return OrderEvent.objects.filter(order=order)
