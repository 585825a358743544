"""The fulfillment moves of the status table: accept, ship, deliver, and cancel.

Every move follows one recipe, in one transaction: lock the order row (``select_for_update``),
ask the status table (``orders.status``) whether the move is legal, save with
``update_fields``, write an ``OrderEvent``, publish a partner event and call the ledger. Locks
are always taken in the same order, the order row first and then products by id, so two
transactions can never wait on each other in a cycle.
"""

from django.db import transaction
from django.utils import timezone

from commissions import services as commission_services
from orders.choices import OrderStatus
from orders.models import Order
from orders.services._shared import lock_order, record_order_event, restock_lines
from orders.services.refunds import refund_everything_left
from orders.status import order_move


def _advance(
    order: Order, *, action: str, stamp: str, type: str, actor: str, changes: dict | None = None
) -> Order:
    """A plain move of the table: lock, check, set status, time stamp and ``changes``, record."""
    order = lock_order(order)
    move = order_move(action, order.status)
    from_status = order.status
    order.status = move.target
    setattr(order, stamp, timezone.now())
    for field, value in (changes or {}).items():
        setattr(order, field, value)
    order.save(update_fields=["status", stamp, *(changes or {}), "updated"])
    record_order_event(order, type=type, from_status=from_status, actor=actor, data=changes)
    return order


@transaction.atomic
def order_accept(*, order: Order, actor: str) -> Order:
    """The fulfillment partner takes on a paid order (after this it can no longer be canceled)."""
    return _advance(order, action="accept", stamp="accepted_at", type="accepted", actor=actor)


@transaction.atomic
def order_ship(*, order: Order, carrier: str, tracking_number: str, actor: str) -> Order:
    """The fulfillment partner hands the parcel to a carrier."""
    return _advance(
        order,
        action="ship",
        stamp="shipped_at",
        type="shipped",
        actor=actor,
        changes={"carrier": carrier, "tracking_number": tracking_number},
    )


@transaction.atomic
def order_deliver(*, order: Order, actor: str) -> Order:
    """The parcel arrived: the return window (``RETURN_WINDOW_DAYS``) starts now."""
    return _advance(order, action="deliver", stamp="delivered_at", type="delivered", actor=actor)


@transaction.atomic
def order_cancel(*, order: Order, reason: str = "", actor: str) -> Order:
    """Cancel an order that has not been accepted yet and put all its units back on sale.

    A pending order just releases its inventory. A paid order is refunded in full (whatever
    earlier partial refunds left), which publishes ``order.refunded`` before ``order.canceled``.
    """
    order = lock_order(order)
    move = order_move("cancel", order.status)
    from_status = order.status
    lines = list(order.lines.all())
    refund = None
    if from_status == OrderStatus.PAID:
        refund = refund_everything_left(
            order, lines, reason=reason or "Order canceled", actor=actor
        )
    # Nothing has left the warehouse: every unit not yet restocked goes back on sale.
    restock_lines(lines, {line.pk: line.quantity for line in lines})
    order.status = move.target
    order.canceled_at = timezone.now()
    order.save(
        update_fields=[
            "status",
            "canceled_at",
            "refunded_amount",
            "refunded_shipping_amount",
            "refunded_tax_amount",
            "updated",
        ]
    )
    if refund is not None:
        commission_services.ledger_post_refund(refund=refund)
    record_order_event(
        order,
        type="canceled",
        from_status=from_status,
        actor=actor,
        data={"reason": reason, "refund": refund.pk if refund else None},
        publish=["order.refunded", "order.canceled"] if refund else ["order.canceled"],
    )
    return order
