"""Money flows for settlement tests, through the ledger's own services.

Orders are built with the ORM and moved the way the order services move them (paid, refunded,
completed), calling ``commission_plan_apply``, ``ledger_post_sale``, ``ledger_post_refund`` and
``ledger_post_release``, so the settlements are tested against what the ledger really posts.
``at=`` posts on a given day: ledger lines take their time from the clock.
"""

from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime

import time_machine
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from commissions import services
from commissions.choices import AccountPurpose
from commissions.models import LedgerLine
from orders.choices import OrderStatus
from orders.models import Order, OrderLine, Refund, RefundLine
from tests import factories


def _clock(at: datetime | None):
    return time_machine.travel(at, tick=True) if at is not None else nullcontext()


def make_order(
    *,
    brand,
    host_app,
    creator=None,
    currency: str = "USD",
    items: Sequence[tuple[int, int]] = ((1999, 2),),
    shipping: int = 0,
    tax: int = 0,
) -> Order:
    """A pending order of ``items`` (unit price in minor units, quantity)."""
    subtotal = sum(price * qty for price, qty in items)
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
    for position, (price, qty) in enumerate(items):
        product = factories.ProductFactory(brand=brand, price=price, currency=currency)
        OrderLine.objects.create(
            order=order,
            product=product,
            sku=product.sku,
            title=product.title,
            category=product.category,
            quantity=qty,
            unit_price=price,
            subtotal=price * qty,
            position=position,
        )
    return order


def pay(order: Order, *, at: datetime | None = None) -> Order:
    with _clock(at), transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        order.status = OrderStatus.PAID
        order.paid_at = timezone.now()
        order.save(update_fields=["status", "paid_at"])
        services.commission_plan_apply(order=order)
        services.ledger_post_sale(order=order)
    return order


def complete(order: Order, *, at: datetime | None = None) -> Order:
    """The return window closed: the partners' shares become available."""
    with _clock(at), transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        order.status = OrderStatus.COMPLETED
        order.completed_at = timezone.now()
        order.save(update_fields=["status", "completed_at"])
        services.ledger_post_release(order=order)
    return order


def refund(
    order: Order, *, lines: dict | None = None, amount: int = 0, at: datetime | None = None
) -> Refund:
    """Refund ``lines`` ({OrderLine: amount}) plus ``amount`` not on lines."""
    with _clock(at), transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        lines = lines or {}
        total = sum(lines.values()) + amount
        record = Refund.objects.create(order=order, amount=total, reason="test")
        for line, line_amount in lines.items():
            RefundLine.objects.create(refund=record, line=line, amount=line_amount)
            OrderLine.objects.filter(pk=line.pk).update(
                refunded_amount=F("refunded_amount") + line_amount
            )
        order.refunded_amount += total
        order.save(update_fields=["refunded_amount"])
        services.ledger_post_refund(refund=record)
    return record


def sell(
    parties, *, items=((1999, 2),), shipping: int = 0, at=None, released_at=None, currency="USD"
) -> Order:
    """An order paid (``at``) and, when ``released_at`` is given, completed then."""
    order = make_order(
        brand=parties.brand,
        host_app=parties.host_app,
        creator=parties.creator,
        items=items,
        shipping=shipping,
        currency=currency,
    )
    pay(order, at=at)
    if released_at is not None:
        complete(order, at=released_at)
    return order


def balance(partner, purpose: str, currency: str = "USD") -> int:
    """Credit minus debit of one of the partner's accounts."""
    sums = LedgerLine.objects.filter(partner=partner, purpose=purpose, currency=currency).aggregate(
        d=Sum("debit"), c=Sum("credit")
    )
    return (sums["c"] or 0) - (sums["d"] or 0)


def available(partner, currency: str = "USD") -> int:
    return balance(partner, AccountPurpose.PARTNER_AVAILABLE, currency)


def in_payout(partner, currency: str = "USD") -> int:
    return balance(partner, AccountPurpose.PARTNER_IN_PAYOUT, currency)


def paid_out(partner, currency: str = "USD") -> int:
    return balance(partner, AccountPurpose.PARTNER_PAID_OUT, currency)
