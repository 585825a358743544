"""Refunds: by line quantities or by amount, never more than was paid."""

from collections.abc import Mapping, Sequence

from django.db import transaction

from commissions import services as commission_services
from livecommerce import money
from livecommerce.api import parse_amount
from livecommerce.errors import AppError, AppValidationError
from orders.models import Order, OrderLine, Refund, RefundLine
from orders.services._shared import lock_order, record_order_event, restock_lines
from orders.status import order_move


def _apply_refund(
    order: Order,
    lines: Sequence[OrderLine],
    *,
    parts: Mapping[str, tuple[int, int]],
    shipping: int,
    tax: int,
    reason: str,
    restock: bool,
    actor: str,
) -> Refund:
    """Save a refund of ``parts`` (line id -> (units, merchandise amount)), shipping and tax.

    Updates the lines' and the order's refunded counters in memory and the lines in the
    database; the caller saves the order. The database's check constraints refuse any counter
    past what was paid, as a last line of defence behind the checks made under the lock.
    """
    amount = sum(part_amount for _, part_amount in parts.values()) + shipping + tax
    refund = Refund.objects.create(
        order=order,
        amount=amount,
        shipping_amount=shipping,
        tax_amount=tax,
        reason=reason,
        restock=restock,
        created_by=actor,
    )
    RefundLine.objects.bulk_create(
        [
            RefundLine(refund=refund, line_id=line_id, quantity=units, amount=part_amount)
            for line_id, (units, part_amount) in parts.items()
        ]
    )
    changed = [line for line in lines if line.pk in parts]
    for line in changed:
        units, part_amount = parts[line.pk]
        line.refunded_quantity += units
        line.refunded_amount += part_amount
    OrderLine.objects.bulk_update(changed, ["refunded_quantity", "refunded_amount"])
    if restock:
        restock_lines(lines, {line_id: units for line_id, (units, _) in parts.items()})
    order.refunded_amount += amount
    order.refunded_shipping_amount += shipping
    order.refunded_tax_amount += tax
    return refund


def _line_refund_parts(
    lines: Sequence[OrderLine], requested: Sequence[Mapping]
) -> dict[str, tuple[int, int]]:
    """Units and merchandise amount per line for a refund by line quantities.

    Each unit returns its unit price, capped at what is left unrefunded on the line (an earlier
    amount refund may have returned part of it), so returning every unit of a line always
    refunds exactly the line's subtotal.
    """
    by_id = {line.pk: line for line in lines}
    wanted: dict[str, int] = {}
    for index, item in enumerate(requested):
        if item["line"] not in by_id:
            raise AppValidationError(
                "invalid_reference",
                f"The order has no line {item['line']}.",
                attr=f"lines.{index}.line",
            )
        wanted[item["line"]] = wanted.get(item["line"], 0) + item["quantity"]
    parts = {}
    for line_id, units in wanted.items():
        line = by_id[line_id]
        units_left = line.quantity - line.refunded_quantity
        if units > units_left:
            raise AppError(
                "refund_exceeds_paid",
                f"Line {line_id} has {units_left} unit(s) left to refund; {units} asked.",
                attr="lines",
            )
        parts[line_id] = (units, min(units * line.unit_price, line.subtotal - line.refunded_amount))
    if not any(part_amount for _, part_amount in parts.values()):
        raise AppError(
            "refund_exceeds_paid", "Nothing is left to refund on these lines.", attr="lines"
        )
    return parts


def _amount_refund_parts(
    order: Order, lines: Sequence[OrderLine], amount: int
) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Spread an amount over the order: merchandise first, then shipping and tax.

    The merchandise part is spread over the lines in proportion to what is left unrefunded on
    each, and what goes past the merchandise over shipping and tax in proportion to what is
    left of each (largest remainder both times, so the parts add up exactly and none exceeds
    what is left of it). The ledger reverses shipping and tax by the same rule.
    """
    left = order.total - order.refunded_amount
    if amount > left:
        raise AppError(
            "refund_exceeds_paid",
            f"Only {money.to_decimal_string(left, order.currency)} {order.currency} is left "
            "to refund.",
            attr="amount",
        )
    line_left = [line.subtotal - line.refunded_amount for line in lines]
    merchandise = min(amount, sum(line_left))
    shares = money.allocate(merchandise, line_left)
    shipping, tax = money.allocate(
        amount - merchandise,
        [
            order.shipping_amount - order.refunded_shipping_amount,
            order.tax_amount - order.refunded_tax_amount,
        ],
    )
    parts = {line.pk: (0, share) for line, share in zip(lines, shares, strict=True) if share}
    return parts, shipping, tax


def refund_everything_left(
    order: Order, lines: Sequence[OrderLine], *, reason: str, actor: str
) -> Refund | None:
    """The refund that returns whatever is left of a paid order (used by cancel)."""
    if order.refunded_amount >= order.total:
        return None
    parts = {
        line.pk: (line.quantity - line.refunded_quantity, line.subtotal - line.refunded_amount)
        for line in lines
        if line.quantity > line.refunded_quantity or line.subtotal > line.refunded_amount
    }
    return _apply_refund(
        order,
        lines,
        parts=parts,
        shipping=order.shipping_amount - order.refunded_shipping_amount,
        tax=order.tax_amount - order.refunded_tax_amount,
        reason=reason,
        restock=True,  # canceled before it was accepted: nothing has left the warehouse
        actor=actor,
    )


@transaction.atomic
def refund_create(
    *,
    order: Order,
    lines: Sequence[Mapping] | None = None,
    amount: str | None = None,
    reason: str = "",
    restock: bool = False,
    actor: str,
) -> Refund:
    """Return money to the buyer, by line quantities or as an amount; never more than was paid.

    The order row is locked for the whole check-and-write, so concurrent refunds are serialised
    and their sum can never pass the total (409 ``refund_exceeds_paid``). Refunding everything
    moves the order to ``refunded``. Line refunds return merchandise (optionally restocking the
    units); amount refunds cover merchandise first, then shipping, then tax.
    """
    order = lock_order(order)
    move = order_move("refund", order.status)
    from_status = order.status
    order_lines = list(order.lines.all())
    if lines is not None:
        parts, shipping, tax = _line_refund_parts(order_lines, lines), 0, 0
    else:
        wanted = parse_amount(amount or "", order.currency, attr="amount")
        if wanted == 0:
            raise AppValidationError(
                "invalid_amount", "A refund must return more than zero.", attr="amount"
            )
        parts, shipping, tax = _amount_refund_parts(order, order_lines, wanted)
    refund = _apply_refund(
        order,
        order_lines,
        parts=parts,
        shipping=shipping,
        tax=tax,
        reason=reason,
        restock=restock,
        actor=actor,
    )
    if order.refunded_amount == order.total:
        order.status = move.target  # refunded: the table's move, reached when all is refunded
    order.save(
        update_fields=[
            "status",
            "refunded_amount",
            "refunded_shipping_amount",
            "refunded_tax_amount",
            "updated",
        ]
    )
    commission_services.ledger_post_refund(refund=refund)
    record_order_event(
        order,
        type="refunded",
        from_status=from_status,
        actor=actor,
        data={
            "refund": refund.pk,
            "amount": money.to_decimal_string(refund.amount, order.currency),
        },
    )
    return refund
