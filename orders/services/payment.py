"""Paying an order: the commission terms applied, the order marked paid, the sale posted.

Every refusal is decided before the first write, with the order row locked, so the payment
needs no savepoint.
"""

from django.db import transaction
from django.utils import timezone

from commissions import services as commission_services
from livecommerce import money
from livecommerce.api import parse_amount
from livecommerce.errors import AppError, AppValidationError
from orders.choices import OrderStatus
from orders.models import Order
from orders.services._shared import lock_order, record_order_event
from orders.status import order_move


def order_pay(*, order: Order, amount: str, payment_reference: str, actor: str) -> Order:
    """Record the buyer's payment of exactly the order's total.

    The commission plan in force is applied (its rates copied onto the lines) before the order is
    marked paid, and the sale is posted to the ledger after, all with the order row locked.
    An order past its ``expires_at`` is never paid (409 ``order_expired``), even if the expiry
    task has not reached it yet: the check is made here, under the same lock the task takes.

    Every refusal (expired, a move the status table refuses, the amount, no plan in force) is
    decided before the first write, so the transaction needs no savepoint: a refusal leaves the
    block having written nothing and is raised after it. The order, its lines and the plans are
    read once; the order row is locked by the UPDATE that marks it paid (``_claimed``); the
    answer is the representation the ``order.paid`` event carries.
    """
    refusal = None
    with transaction.atomic(savepoint=False):
        try:
            order, from_status, paid, terms = _claimed(order, amount, payment_reference)
        except (AppError, AppValidationError) as error:
            refusal = error
        else:
            application, lines = commission_services.commission_terms_apply(
                order=order, terms=terms, save_order=False
            )
            commission_services.ledger_post_sale(order=order, application=application, lines=lines)
            order.representation = record_order_event(
                order,
                type="paid",
                from_status=from_status,
                actor=actor,
                data={
                    "amount": money.to_decimal_string(paid, order.currency),
                    "payment_reference": payment_reference,
                },
                lines=lines,
            )
    if refusal is not None:
        raise refusal
    return order


def _claimed(order: Order, amount: str, payment_reference: str):
    """Lock ``order``'s row and mark it paid, or raise the refusal having written nothing;
    returns the order as saved, the status it was paid from, the amount and the commission
    terms.

    The checks are made first on the caller's copy (read in this request, without a lock), then
    ONE conditional UPDATE marks the row paid only if it is still in the status checked and not
    past its ``expires_at``: the UPDATE takes the row lock, waits for a transaction holding it
    and re-reads the row it committed, so a cancel or an expiry that won the race leaves it
    updating nothing. In that case, or when the copy is refused, the decision is made again on
    the locked row, as ``lock_order`` then the checks would make it: the outcome is the one a
    payment deciding under the lock from the start has (a pending order's lines and total do
    not change while it is pending, so the terms read before the lock are those after it).
    """
    try:
        move, paid, terms = _payment_checked(order, amount)
    except (AppError, AppValidationError):
        pass  # the copy may lag behind the row: decided again under the lock below
    else:
        from_status = order.status
        now = timezone.now()
        changes = {
            "status": move.target,
            "paid_at": now,
            "payment_reference": payment_reference,
            "commission_plan_id": terms.plan.pk,
            "updated": now,
        }
        still = Order.objects.filter(pk=order.pk, status=from_status)
        if from_status == OrderStatus.PENDING_PAYMENT:
            still = still.exclude(expires_at__lte=now)
        if still.update(**changes):
            for field, value in changes.items():
                setattr(order, field, value)
            return order, from_status, paid, terms
    order = lock_order(order)
    move, paid, terms = _payment_checked(order, amount)
    from_status = order.status
    order.status = move.target
    order.paid_at = timezone.now()
    order.payment_reference = payment_reference
    order.commission_plan_id = terms.plan.pk
    order.save(
        update_fields=["status", "paid_at", "payment_reference", "commission_plan_id", "updated"]
    )
    return order, from_status, paid, terms


def _payment_checked(order: Order, amount: str):
    """The move, the amount paid and the commission terms of paying the locked ``order``, or
    the ``AppError`` refusing it; reads the lines and the plans in force, writes nothing."""
    if order.status == OrderStatus.EXPIRED or (
        order.status == OrderStatus.PENDING_PAYMENT
        and order.expires_at is not None
        and order.expires_at <= timezone.now()
    ):
        raise AppError(
            "order_expired",
            f"Order {order.pk} was not paid before {order.expires_at:%Y-%m-%dT%H:%M:%SZ}; its "
            "units went back on sale. Place a new order.",
        )
    move = order_move("pay", order.status)
    paid = parse_amount(amount, order.currency, attr="amount")
    if paid != order.total:
        total = money.to_decimal_string(order.total, order.currency)
        raise AppError(
            "amount_mismatch",
            f"The order total is {total} {order.currency}; pay exactly that.",
            attr="amount",
        )
    terms = commission_services.commission_terms(order=order, lines=order.lines.all())
    return move, paid, terms
