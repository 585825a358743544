"""Orders: placing them with reserved inventory, and every move of the status table.

Every move follows one recipe, in one transaction: lock the order row (``select_for_update``),
ask the status table (``orders.status``) whether the move is legal, save with
``update_fields``, write an ``OrderEvent``, publish a partner event and call the ledger. Locks
are always taken in the same order, the order row first and then products by id, so two
transactions can never wait on each other in a cycle.
"""

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from commissions import services as commission_services
from livecommerce import money
from livecommerce.api import parse_amount
from livecommerce.errors import AppError, AppValidationError
from livecommerce.wire import timestamp
from orders.choices import LiveSessionStatus, OrderStatus
from orders.models import LiveSession, Order, OrderEvent, OrderLine, Product
from orders.payloads import order_payload
from orders.services._shared import (
    SYSTEM_ACTOR,
    lock_order,
    record_order_event,
    restock_lines,
)
from orders.services.refunds import refund_everything_left
from orders.services.stock import stock_changed
from orders.status import order_move
from partners.choices import PartnerStatus
from partners.events import event_publish_many, stamp
from partners.models import Partner

logger = logging.getLogger(__name__)

MAX_ORDER_TOTAL = 10**18
"""Bound on an order's total in minor units, well inside PostgreSQL's bigint."""


@transaction.atomic
def order_create(
    *,
    host_app: Partner,
    lines: Sequence[Mapping],
    live_session_id: str | None = None,
    buyer_reference: str = "",
    buyer_email: str = "",
    shipping_address: dict | None = None,
    shipping_amount: str = "0",
    tax_amount: str = "0",
    actor: str,
) -> Order:
    """Place an order on a host app and reserve its inventory until ``expires_at``.

    Each line pays the catalog price, or the show's live price when the order names a live
    session that is live now and has one for the product (``list_price`` keeps the catalog's).
    The hold lasts the session's ``hold_seconds`` (``ORDER_HOLD_SECONDS`` without a session).

    Products the host app may not sell (another brand's, or an invite-only host app's
    non-enrolled brand) are answered like unknown ones (400 ``invalid_reference``), so the
    catalog of brands a host app may not sell does not leak. Lines naming the same product are
    merged. The product rows are locked in id order before their inventory is checked, so
    concurrent buyers of the last units can never oversell (409 ``insufficient_inventory``, with
    how many units are ``available``). Taking a product's last units publishes
    ``product.sold_out`` in this transaction.
    """
    quantities: dict[str, int] = {}
    first_index: dict[str, int] = {}
    for index, line in enumerate(lines):
        first_index.setdefault(line["product"], index)
        quantities[line["product"]] = quantities.get(line["product"], 0) + line["quantity"]

    # Read without a lock: the inventory is taken at the end by a conditional UPDATE per product.
    products = list(
        Product.objects.filter(pk__in=quantities)
        .filter(Product.objects.partner_filter(host_app))
        .annotate(
            brand_status=F("brand__status"),
            brand_fulfiller=F("brand__fulfillment_partner_id"),
        )
        .order_by("pk")
    )
    found = {p.pk: p for p in products}
    for product_id, index in first_index.items():
        if product_id not in found:
            raise AppValidationError(
                "invalid_reference",
                f"No product {product_id} that this host app may sell.",
                attr=f"lines.{index}.product",
            )
    if len({p.brand_id for p in products}) > 1 or len({p.currency for p in products}) > 1:
        raise AppError(
            "mixed_order",
            "An order sells one brand's products in one currency; place one order per brand "
            "and currency.",
            attr="lines",
        )
    brand_id, currency = products[0].brand_id, products[0].currency
    # A suspended brand sells nothing, on any host app (finding 3 of issue 18).
    if products[0].brand_status == PartnerStatus.SUSPENDED:
        raise AppError(
            "brand_suspended",
            f"Brand {brand_id} is suspended; its products cannot be ordered.",
            attr="lines",
        )

    session = None
    if live_session_id:
        session = LiveSession.objects.filter(pk=live_session_id, host_apps=host_app).first()
        if session is None:
            raise AppValidationError(
                "invalid_reference",
                f"No live session {live_session_id} broadcast on this host app.",
                attr="live_session",
            )
    shipping = parse_amount(shipping_amount, currency, attr="shipping_amount")
    tax = parse_amount(tax_amount, currency, attr="tax_amount")

    for product in products:
        if product.inventory < quantities[product.pk]:
            _insufficient(product.pk, product.inventory, quantities, first_index)
    prices = {p.pk: _unit_price(p, session) for p in products}
    subtotal = sum(quantities[p.pk] * prices[p.pk] for p in products)
    if subtotal + shipping + tax >= MAX_ORDER_TOTAL:
        raise AppValidationError("invalid_amount", "The order total is too large.", attr=None)
    hold = session.hold_seconds if session else settings.ORDER_HOLD_SECONDS

    order = Order(
        host_app=host_app,
        brand_id=brand_id,
        fulfillment_partner_id=products[0].brand_fulfiller,
        live_session=session,
        creator_id=session.creator_id if session else None,
        currency=currency,
        subtotal=subtotal,
        shipping_amount=shipping,
        tax_amount=tax,
        total=subtotal + shipping + tax,
        buyer_reference=buyer_reference,
        buyer_email=buyer_email,
        shipping_address=shipping_address,
        expires_at=timezone.now() + timedelta(seconds=hold),
    )
    lines = [
        OrderLine(
            order=order,
            product=found[product_id],
            sku=found[product_id].sku,
            title=found[product_id].title,
            category=found[product_id].category,
            quantity=quantities[product_id],
            unit_price=prices[product_id],
            list_price=found[product_id].price,
            subtotal=quantities[product_id] * prices[product_id],
            position=position,
        )
        for position, product_id in enumerate(first_index)
    ]
    stamp(order, *lines)
    # The writes: the inventory first (each product's row lock taken last thing before the one
    # statement that writes the order, its lines, its history and its events), then that
    # statement; a product that sold out meanwhile refuses the order with nothing written.
    stock_changed(_take_inventory(quantities, first_index))
    order.representation = record_order_event(
        order,
        type="created",
        from_status="",
        actor=actor,
        lines=lines,
        new_rows=[order, *lines],
    )
    return order


def _insufficient(product_id: str, available: int, quantities, first_index) -> None:
    raise AppError(
        "insufficient_inventory",
        f"Only {available} of product {product_id} left; {quantities[product_id]} asked.",
        attr=f"lines.{first_index[product_id]}.quantity",
        extra={"available": available},
    )


def _take_inventory(
    quantities: Mapping[str, int], first_index: Mapping[str, int]
) -> dict[str, tuple[int, int]]:
    """Take each product's units with one conditional UPDATE, in product id order (so two
    orders sharing products cannot deadlock): it takes the row lock, and takes the units only if
    that many are left, so concurrent buyers of the last units can never oversell. Returns
    product id -> (units before, units after); raises 409 ``insufficient_inventory`` (with the
    units ``available``) when a product has fewer left, which rolls the order back."""
    changes = {}
    now = timezone.now()
    with connection.cursor() as cursor:
        for product_id in sorted(quantities):
            wanted = quantities[product_id]
            cursor.execute(
                "UPDATE orders_product SET inventory = inventory - %s, updated = %s"
                " WHERE id = %s AND inventory >= %s RETURNING inventory",
                [wanted, now, product_id, wanted],
            )
            row = cursor.fetchone()
            if row is None:
                available = Product.objects.values_list("inventory", flat=True).get(pk=product_id)
                _insufficient(product_id, available, quantities, first_index)
            changes[product_id] = (row[0] + wanted, row[0])
    return changes


def _unit_price(product: Product, session: LiveSession | None) -> int:
    """What one unit costs on an order: the show's live price while the show is live (and only
    if it was set in the product's currency), else the catalog price."""
    if session is None or session.status != LiveSessionStatus.LIVE:
        return product.price
    live = (session.live_prices or {}).get(product.pk)
    if live and live.get("currency") == product.currency:
        return int(live["amount"])
    return product.price


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
