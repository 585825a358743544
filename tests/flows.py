"""Orders in each state for the tests, moved only by the order services: the one order lifecycle.

``make_order`` builds a pending order with the factories (any lines, shipping, tax, creator or
live session, without reserving inventory); every move after that is the order services' own,
called by their public names, so the ledger, the reports and the settlements are tested against
what a real order posts:

- ``pay``: ``order_pay`` (applies the commission plan, posts the sale);
- ``accept``, ``ship``, ``deliver``: the fulfillment partner's moves;
- ``complete``: whatever of accept, ship and deliver is not done yet, then the return window
  closes (``order_close_return_windows``): the sale is released to the partners;
- ``cancel``: ``order_cancel`` (a paid order is refunded in full);
- ``refund``: ``refund_create``, by units of lines or by an amount (spread by the service).

``at=`` makes a move at a given time (time-machine, ticking): ledger lines take their time from
the clock, which is how postings land on chosen days. ``ledger_refund`` is the one exception, for
the ledger's own tests: a refund record posted on its own, the order left as it was.
The read helpers at the end sum the ledger's lines.
"""

from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime, timedelta

import time_machine
from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum

from commissions.choices import AccountPurpose
from commissions.models import LedgerLine
from commissions.services import ledger_post_refund
from livecommerce import money
from orders.choices import OrderStatus
from orders.models import Order, OrderLine, Refund
from orders.services import (
    order_accept,
    order_cancel,
    order_close_return_windows,
    order_deliver,
    order_pay,
    order_ship,
    refund_create,
)
from tests import factories

ACTOR = "test"


def _clock(at: datetime | None):
    return time_machine.travel(at, tick=True) if at is not None else nullcontext()


def make_order(
    *,
    brand,
    host_app,
    currency: str = "USD",
    items: Sequence[tuple] = ((1999, 2),),
    shipping: int = 0,
    tax: int = 0,
    creator=None,
    live_session=None,
) -> Order:
    """A pending order of ``items``: (unit price in minor units, quantity[, category]), each line
    a product of its own."""
    subtotal = sum(price * quantity for price, quantity, *_ in items)
    order = factories.OrderFactory(
        host_app=host_app,
        brand=brand,
        creator=creator,
        live_session=live_session,
        currency=currency,
        subtotal=subtotal,
        shipping_amount=shipping,
        tax_amount=tax,
    )
    for position, (price, quantity, *category) in enumerate(items):
        named = {"category": category[0]} if category else {}
        product = factories.ProductFactory(brand=brand, price=price, currency=currency, **named)
        factories.OrderLineFactory(
            order=order, product=product, quantity=quantity, position=position
        )
    return order


def pay(order: Order, *, at: datetime | None = None) -> Order:
    """The buyer pays the order's total."""
    with _clock(at):
        return order_pay(
            order=order,
            amount=money.to_decimal_string(order.total, order.currency),
            payment_reference=f"pay-{order.pk}",
            actor=ACTOR,
        )


def accept(order: Order, *, at: datetime | None = None) -> Order:
    with _clock(at):
        return order_accept(order=order, actor=ACTOR)


def ship(order: Order, *, at: datetime | None = None) -> Order:
    with _clock(at):
        return order_ship(order=order, carrier="UPS", tracking_number="1Z999", actor=ACTOR)


def deliver(order: Order, *, at: datetime | None = None) -> Order:
    with _clock(at):
        return order_deliver(order=order, actor=ACTOR)


def complete(order: Order, *, at: datetime | None = None) -> Order:
    """Fulfil a paid order (what is left of accept, ship, deliver) and close its return window:
    the partners' shares become available."""
    moves = {OrderStatus.PAID: accept, OrderStatus.ACCEPTED: ship, OrderStatus.SHIPPED: deliver}
    with _clock(at):
        status = Order.objects.values_list("status", flat=True).get(pk=order.pk)
        while status in moves:
            status = moves[status](order).status
        delivered_at = Order.objects.values_list("delivered_at", flat=True).get(pk=order.pk)
        order_close_return_windows(now=delivered_at + timedelta(days=settings.RETURN_WINDOW_DAYS))
    order = Order.objects.get(pk=order.pk)
    assert order.status == OrderStatus.COMPLETED, f"{order.pk} did not complete: {order.status}"
    return order


def completable(order: Order) -> bool:
    """Whether ``complete`` can move the order: it is paid (or on its way) and not all refunded."""
    status = Order.objects.values_list("status", flat=True).get(pk=order.pk)
    return status in (OrderStatus.PAID, OrderStatus.ACCEPTED, OrderStatus.SHIPPED)


def cancel(order: Order, *, at: datetime | None = None) -> Order:
    """Cancel a pending or paid order (a paid one is refunded in full)."""
    with _clock(at):
        return order_cancel(order=order, actor=ACTOR)


def refund(
    order: Order,
    *,
    units: dict[OrderLine, int] | None = None,
    amount: int | None = None,
    restock: bool = False,
    at: datetime | None = None,
) -> Refund:
    """Refund ``units`` ({OrderLine: how many}) or ``amount`` (minor units: the service spreads
    it over the lines first, then over shipping and tax)."""
    with _clock(at):
        if units is not None:
            lines = [{"line": line.pk, "quantity": count} for line, count in units.items()]
            return refund_create(
                order=order, lines=lines, reason="test", restock=restock, actor=ACTOR
            )
        return refund_create(
            order=order,
            amount=money.to_decimal_string(amount, order.currency),
            reason="test",
            restock=restock,
            actor=ACTOR,
        )


def refund_by_amount(order: Order, amount: int) -> Refund:
    return refund(order, amount=amount)


def sell(
    parties, *, items=((1999, 2),), shipping: int = 0, at=None, released_at=None, currency="USD"
) -> Order:
    """An order of ``parties`` (host app, brand, creator) paid ``at`` and, when ``released_at``
    is given, completed then."""
    order = pay(
        make_order(
            brand=parties.brand,
            host_app=parties.host_app,
            creator=parties.creator,
            items=items,
            shipping=shipping,
            currency=currency,
        ),
        at=at,
    )
    if released_at is not None:
        order = complete(order, at=released_at)
    return order


@transaction.atomic
def ledger_refund(
    order: Order, *, lines: dict | None = None, shipping: int = 0, tax: int = 0
) -> Refund:
    """For the ledger's own tests: a refund record of ``lines`` ({OrderLine: merchandise
    amount}), ``shipping`` and ``tax``, posted with ``ledger_post_refund`` on its own (the order
    is left as it was); everything else refunds through ``refund``."""
    lines = lines or {}
    record = factories.RefundFactory(
        order=order,
        amount=sum(lines.values()) + shipping + tax,
        shipping_amount=shipping,
        tax_amount=tax,
    )
    for line, part in lines.items():
        factories.RefundLineFactory(refund=record, line=line, amount=part)
    ledger_post_refund(refund=record)
    return record


# --- The ledger's balances ----------------------------------------------------------------------


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


def pending(partner, currency: str | None = None, **filters) -> int:
    return balance(
        purpose=AccountPurpose.PARTNER_PENDING, partner=partner, currency=currency, **filters
    )


def available(partner, currency: str = "USD", **filters) -> int:
    return balance(
        purpose=AccountPurpose.PARTNER_AVAILABLE, partner=partner, currency=currency, **filters
    )


def in_payout(partner, currency: str = "USD") -> int:
    return balance(purpose=AccountPurpose.PARTNER_IN_PAYOUT, partner=partner, currency=currency)


def paid_out(partner, currency: str = "USD") -> int:
    return balance(purpose=AccountPurpose.PARTNER_PAID_OUT, partner=partner, currency=currency)


def account_balances(**filters) -> dict[tuple, int]:
    """Every account's credit-minus-debit for lines matching ``filters`` (e.g. order=...)."""
    rows = (
        LedgerLine.objects.filter(Q(**filters))
        .values("purpose", "partner_id", "currency")
        .annotate(d=Sum("debit"), c=Sum("credit"))
    )
    return {(r["purpose"], r["partner_id"], r["currency"]): r["c"] - r["d"] for r in rows}
