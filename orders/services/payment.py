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
    read once; the answer is the representation the ``order.paid`` event carries.
    """
    refusal = None
    with transaction.atomic(savepoint=False):
        order = lock_order(order)
        try:
            move, paid, terms = _payment_checked(order, amount)
        except (AppError, AppValidationError) as error:
            refusal = error
        else:
            application, lines = commission_services.commission_terms_apply(
                order=order, terms=terms, save_order=False
            )
            from_status = order.status
            order.status = move.target
            order.paid_at = timezone.now()
            order.payment_reference = payment_reference
            order.save(
                update_fields=[
                    "status",
                    "paid_at",
                    "payment_reference",
                    "commission_plan_id",
                    "updated",
                ]
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
