"""Order flows for ledger tests, built with the ORM the way the order services drive them.

The order services call ``commission_plan_apply`` and ``ledger_post_sale`` when an order is paid,
``ledger_post_refund`` for each refund (a cancel of a paid order refunds it in full) and
``ledger_post_release`` when the return window closes; these helpers do the same, inside a
transaction, so the ledger can be tested on its own.
"""

from collections.abc import Sequence

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from commissions import services
from commissions.choices import AccountPurpose
from commissions.models import LedgerLine
from orders.choices import OrderStatus
from orders.models import Order, OrderLine, Refund, RefundLine
from tests import factories


def make_order(
    *,
    brand,
    host_app,
    currency: str = "USD",
    items: Sequence[tuple[int, int, str]] = ((1999, 2, "beauty"),),
    shipping: int = 0,
    tax: int = 0,
    creator=None,
) -> Order:
    """A pending order of ``items`` (unit price in minor units, quantity, category)."""
    subtotal = sum(price * qty for price, qty, _ in items)
    order = Order.objects.create(
        host_app=host_app,
        brand=brand,
        fulfillment_partner=brand.fulfillment_partner,
        creator=creator,
        currency=currency,
        subtotal=subtotal,
        shipping_amount=shipping,
        tax_amount=tax,
        total=subtotal + shipping + tax,
    )
    for position, (price, qty, category) in enumerate(items):
        product = factories.ProductFactory(
            brand=brand, price=price, currency=currency, category=category
        )
        OrderLine.objects.create(
            order=order,
            product=product,
            sku=product.sku,
            title=product.title,
            category=category,
            quantity=qty,
            unit_price=price,
            subtotal=price * qty,
            position=position,
        )
    return order


@transaction.atomic
def pay(order: Order) -> Order:
    order = Order.objects.select_for_update().get(pk=order.pk)
    order.status = OrderStatus.PAID
    order.paid_at = timezone.now()
    order.save(update_fields=["status", "paid_at"])
    services.commission_plan_apply(order=order)
    services.ledger_post_sale(order=order)
    return order


@transaction.atomic
def refund(
    order: Order,
    *,
    lines: dict | None = None,
    shipping: int = 0,
    tax: int = 0,
    amount: int = 0,
) -> Refund:
    """Refund ``lines`` ({OrderLine: merchandise amount}), ``shipping`` and ``tax`` as the order
    services write refunds, plus ``amount`` named on no part (the ledger spreads it)."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    lines = lines or {}
    total = sum(lines.values()) + shipping + tax + amount
    record = Refund.objects.create(
        order=order, amount=total, shipping_amount=shipping, tax_amount=tax, reason="test"
    )
    for line, line_amount in lines.items():
        RefundLine.objects.create(refund=record, line=line, amount=line_amount)
        OrderLine.objects.filter(pk=line.pk).update(
            refunded_amount=F("refunded_amount") + line_amount
        )
    order.refunded_amount += total
    if order.refunded_amount == order.total:
        order.status = OrderStatus.REFUNDED
    order.save(update_fields=["refunded_amount", "status"])
    services.ledger_post_refund(refund=record)
    return record


@transaction.atomic
def cancel(order: Order) -> Refund | None:
    order = Order.objects.select_for_update().get(pk=order.pk)
    record = refund_everything_left(order)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELED)
    return record


@transaction.atomic
def complete(order: Order) -> Order:
    order = Order.objects.select_for_update().get(pk=order.pk)
    order.status = OrderStatus.COMPLETED
    order.completed_at = timezone.now()
    order.save(update_fields=["status", "completed_at"])
    services.ledger_post_release(order=order)
    return order


def balance(*, purpose: str, partner=None, currency: str | None = None, order=None) -> int:
    """Credit minus debit over the matching ledger lines (debit minus credit for clearing)."""
    lines = LedgerLine.objects.filter(purpose=purpose)
    if partner is not None:
        lines = lines.filter(partner=partner)
    if currency is not None:
        lines = lines.filter(currency=currency)
    if order is not None:
        lines = lines.filter(order=order)
    sums = lines.aggregate(d=Sum("debit"), c=Sum("credit"))
    net = (sums["c"] or 0) - (sums["d"] or 0)
    return -net if purpose == AccountPurpose.BUYER_FUNDS_CLEARING else net


def pending(partner, **kw) -> int:
    return balance(purpose=AccountPurpose.PARTNER_PENDING, partner=partner, **kw)


def available(partner, **kw) -> int:
    return balance(purpose=AccountPurpose.PARTNER_AVAILABLE, partner=partner, **kw)


def account_balances(**filters) -> dict[tuple, int]:
    """Every account's credit-minus-debit for lines matching ``filters`` (e.g. order=...)."""
    rows = (
        LedgerLine.objects.filter(Q(**filters))
        .values("purpose", "partner_id", "currency")
        .annotate(d=Sum("debit"), c=Sum("credit"))
    )
    return {(r["purpose"], r["partner_id"], r["currency"]): r["c"] - r["d"] for r in rows}


def refund_by_amount(order: Order, amount: int) -> Refund:
    """A refund of ``amount`` spread as the order services spread one: merchandise first, over
    the lines in proportion to what is left of each, then shipping and tax in proportion."""
    from livecommerce import money

    order.refresh_from_db()
    lines = list(order.lines.order_by("position", "id"))
    line_left = [line.subtotal - line.refunded_amount for line in lines]
    merchandise = min(amount, sum(line_left))
    parts = money.allocate(merchandise, line_left)
    shipping_left, tax_left = _extras_left(order)
    shipping, tax = money.allocate(amount - merchandise, [shipping_left, tax_left])
    return refund(
        order,
        lines={line: part for line, part in zip(lines, parts, strict=True) if part},
        shipping=shipping,
        tax=tax,
    )


def _extras_left(order: Order) -> tuple[int, int]:
    refunds = Refund.objects.filter(order=order).aggregate(
        s=Sum("shipping_amount"), t=Sum("tax_amount")
    )
    return order.shipping_amount - (refunds["s"] or 0), order.tax_amount - (refunds["t"] or 0)


def refund_everything_left(order: Order) -> Refund | None:
    order.refresh_from_db()
    left = order.total - order.refunded_amount
    return refund_by_amount(order, left) if left else None
