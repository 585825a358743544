"""What time does to orders: unpaid ones expire, delivered ones complete when their return
window closes. Both run from periodic tasks and management commands, and are safe to run twice
or twice at once (``SKIP LOCKED``, re-checked under each order's lock).
"""

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from commissions import services as commission_services
from livecommerce.wire import timestamp
from orders.choices import OrderStatus
from orders.models import Order, OrderEvent, OrderLine
from orders.payloads import order_payload
from orders.services._shared import SYSTEM_ACTOR, record_order_event, restock_lines
from orders.status import order_move
from partners.events import event_publish_many

logger = logging.getLogger(__name__)


def _complete(order: Order) -> Order:
    move = order_move("complete", order.status)
    from_status = order.status
    order.status = move.target
    order.completed_at = timezone.now()
    order.save(update_fields=["status", "completed_at", "updated"])
    commission_services.ledger_post_release(order=order)
    record_order_event(order, type="completed", from_status=from_status, actor=SYSTEM_ACTOR)
    return order


def order_close_return_windows(*, now: datetime | None = None) -> int:
    """Complete every delivered order whose return window has closed; returns how many.

    The one service behind the periodic task and ``manage.py close_return_windows``. Each order
    completes in its own transaction, re-checked under its lock (an order refunded or being
    changed meanwhile is left for the next run), so running it twice, or twice at once, is safe.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.RETURN_WINDOW_DAYS)
    due = list(
        Order.objects.filter(status=OrderStatus.DELIVERED, delivered_at__lte=cutoff)
        .order_by("delivered_at", "pk")
        .values_list("pk", flat=True)
    )
    completed = 0
    for order_id in due:
        try:
            with transaction.atomic():
                order = (
                    Order.objects.select_for_update(skip_locked=True)
                    .filter(pk=order_id, status=OrderStatus.DELIVERED, delivered_at__lte=cutoff)
                    .first()
                )
                if order is None:
                    continue
                _complete(order)
        except Exception:
            # One order's failure (the ledger refusing it, say) must not hold up the others.
            logger.exception("could not complete order %s", order_id)
            continue
        completed += 1
    return completed


EXPIRY_BATCH = 500
"""Orders expired per transaction: a burst of abandoned checkouts is a few statements each."""


def order_expire_due(*, now: datetime | None = None, batch_size: int = EXPIRY_BATCH) -> int:
    """Expire every unpaid order whose ``expires_at`` has passed; returns how many.

    The one service behind the periodic task and ``manage.py expire_orders``. Set-based: each
    batch is locked with ``SKIP LOCKED`` (an order being paid or canceled right now is left to
    the next run, and two runs at once take disjoint batches), restocked, moved and published
    with a fixed number of statements whatever its size. Running it twice is safe: an order
    leaves ``pending_payment`` once, under its lock.
    """
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            orders = list(
                Order.objects.select_for_update(skip_locked=True)
                .filter(status=OrderStatus.PENDING_PAYMENT, expires_at__lte=now)
                .order_by("expires_at", "pk")[:batch_size]
            )
            if orders:
                _expire(orders)
        expired += len(orders)
        if len(orders) < batch_size:
            return expired


def _expire(orders: Sequence[Order]) -> None:
    """Move locked pending orders to ``expired``, put their units back, record and publish."""
    move = order_move("expire", OrderStatus.PENDING_PAYMENT)
    ids = [order.pk for order in orders]
    lines = list(OrderLine.objects.filter(order_id__in=ids))
    restock_lines(lines, {line.pk: line.quantity for line in lines})
    now = timezone.now()
    Order.objects.filter(pk__in=ids).update(status=move.target, updated=now)
    OrderEvent.objects.bulk_create(
        [
            OrderEvent(
                order=order,
                type="expired",
                from_status=OrderStatus.PENDING_PAYMENT,
                to_status=move.target,
                actor=SYSTEM_ACTOR,
                data={"expires_at": timestamp(order.expires_at)},
            )
            for order in orders
        ]
    )
    payloads = [
        order_payload(order, list(order.lines.all()))
        for order in Order.objects.filter(pk__in=ids).prefetch_related("lines").order_by("pk")
    ]
    event_publish_many(
        events=[
            (
                "order.expired",
                payload["id"],
                payload,
                [
                    payload["host_app"],
                    payload["brand"],
                    payload["fulfillment_partner"],
                    payload["creator"],
                ],
            )
            for payload in payloads
        ]
    )
