"""Writes for the catalog, live sessions and orders.

Every order state change follows one recipe, in one transaction: lock the order row
(``select_for_update``), ask the status table (``orders.status``) whether the move is legal,
save with ``update_fields``, write an ``OrderEvent``, publish a partner event and call the ledger.
Locks are always taken in the same order, the order row first and then products by id, so two
transactions can never wait on each other in a cycle. Inventory is reserved when the order is
placed, under the product rows' locks, so the catalog can never be oversold.
"""

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from commissions import services as commission_services
from livecommerce import money
from livecommerce.errors import AppError, AppValidationError
from orders.choices import OrderStatus
from orders.models import LiveSession, Order, OrderEvent, OrderLine, Product, Refund, RefundLine
from orders.status import live_session_move, order_move
from partners.choices import BrandAccess, PartnerKind
from partners.events import event_publish
from partners.models import Enrollment, Partner

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
MAX_ORDER_TOTAL = 10**18
"""Bound on an order's total in minor units, well inside PostgreSQL's bigint."""


def _minor(value: str, currency: str, *, attr: str) -> int:
    """Parse an API amount in ``currency``; bad input is a 400 on ``attr``."""
    try:
        return money.to_minor(value, currency)
    except money.MoneyError as exc:
        raise AppValidationError(exc.code, exc.detail, attr=attr) from None


def _check_currency(currency: str) -> None:
    try:
        money.exponent(currency)
    except money.MoneyError as exc:
        raise AppValidationError(exc.code, exc.detail, attr="currency") from None


# --- Catalog ---------------------------------------------------------------------------------


def _catalog_brand(*, writer: Partner, brand_id: str | None) -> Partner:
    """The brand whose catalog ``writer`` writes: itself, or one it fulfils (named)."""
    if writer.kind == PartnerKind.BRAND:
        if brand_id not in (None, writer.pk):
            raise AppValidationError(
                "invalid_reference", "A brand adds products to its own catalog only.", attr="brand"
            )
        return writer
    if not brand_id:
        raise AppValidationError(
            "required", "Name the brand this product belongs to.", attr="brand"
        )
    brand = Partner.objects.filter(
        pk=brand_id, kind=PartnerKind.BRAND, fulfillment_partner=writer
    ).first()
    if brand is None:
        raise AppValidationError(
            "invalid_reference", "No such brand among the brands you fulfil.", attr="brand"
        )
    return brand


def _save_product(product: Product, *, update_fields: list[str] | None = None) -> None:
    # A savepoint, so that a duplicate SKU (two writers racing) is a clean 409, not a 500.
    try:
        with transaction.atomic():
            product.save(update_fields=update_fields)
    except IntegrityError as exc:
        if "product_sku_unique_per_brand" not in str(exc):
            raise
        raise AppError(
            "duplicate_sku",
            f"Brand {product.brand_id} already has a product with SKU {product.sku!r}.",
            attr="sku",
        ) from None


@transaction.atomic
def product_create(
    *,
    writer: Partner,
    brand_id: str | None = None,
    sku: str,
    title: str,
    category: str = "",
    price: str,
    currency: str,
    inventory: int = 0,
) -> Product:
    """Add a product to a brand's catalog.

    A brand writes its own catalog; a fulfillment partner keeps the catalogs of the brands it
    fulfils and names the brand. The price is exact in the product's currency (never rounded).
    """
    brand = _catalog_brand(writer=writer, brand_id=brand_id)
    _check_currency(currency)
    product = Product(
        brand=brand,
        sku=sku,
        title=title,
        category=category,
        price=_minor(price, currency, attr="price"),
        currency=currency,
        inventory=inventory,
    )
    _save_product(product)
    return product


@transaction.atomic
def product_update(*, product: Product, **changes) -> Product:
    """Change a product's SKU, title, category, price, currency or inventory.

    ``inventory`` is set, not added to, under the product row's lock (orders reserve under the
    same lock). A new currency needs a price in that currency in the same change, so an amount
    is never silently reinterpreted in another currency.
    """
    product = Product.objects.select_for_update().get(pk=product.pk)
    currency = changes.get("currency", product.currency)
    if currency != product.currency:
        _check_currency(currency)
        if "price" not in changes:
            raise AppValidationError(
                "required", "Send the price in the new currency too.", attr="price"
            )
    fields = []
    for field in ("sku", "title", "category", "currency", "inventory"):
        if field in changes:
            setattr(product, field, changes[field])
            fields.append(field)
    if "price" in changes:
        product.price = _minor(changes["price"], currency, attr="price")
        fields.append("price")
    if fields:
        _save_product(product, update_fields=[*fields, "updated"])
    return product


# --- Live sessions ---------------------------------------------------------------------------


def _broadcast_host_apps(*, producer: Partner, host_app_ids: Sequence[str] | None) -> list[Partner]:
    if producer.kind == PartnerKind.HOST_APP:
        if host_app_ids is not None and set(host_app_ids) != {producer.pk}:
            raise AppValidationError(
                "invalid_reference",
                "A host app broadcasts the shows it produces on itself only.",
                attr="host_apps",
            )
        return [producer]
    if not host_app_ids:
        raise AppValidationError(
            "required", "Name the host apps the show is broadcast on.", attr="host_apps"
        )
    found = {
        p.pk: p for p in Partner.objects.filter(pk__in=host_app_ids, kind=PartnerKind.HOST_APP)
    }
    for index, host_app_id in enumerate(host_app_ids):
        if host_app_id not in found:
            raise AppValidationError(
                "invalid_reference", f"No host app {host_app_id}.", attr=f"host_apps.{index}"
            )
    return list(found.values())


def _session_products(*, producer: Partner, product_ids: Sequence[str]) -> list[Product]:
    found = {
        p.pk: p
        for p in Product.objects.filter(pk__in=product_ids).filter(
            Product.objects.partner_filter(producer)
        )
    }
    for index, product_id in enumerate(product_ids):
        if product_id not in found:
            raise AppValidationError(
                "invalid_reference", f"No product {product_id}.", attr=f"products.{index}"
            )
    return list(found.values())


def _check_brands_sellable(*, host_apps: Sequence[Partner], brand_ids: set[str]) -> None:
    """Every host app the show is broadcast on must be allowed to sell every brand it shows."""
    invite_only = [h for h in host_apps if h.brand_access == BrandAccess.INVITE_ONLY]
    if not invite_only or not brand_ids:
        return
    enrolled = set(
        Enrollment.objects.filter(host_app__in=invite_only, brand__in=brand_ids).values_list(
            "host_app_id", "brand_id"
        )
    )
    for host_app in sorted(invite_only, key=lambda h: h.pk):
        for brand_id in sorted(brand_ids):
            if (host_app.pk, brand_id) not in enrolled:
                raise AppError(
                    "brand_not_enrolled",
                    f"Host app {host_app.pk} may not sell brand {brand_id}: it is invite-only "
                    "and the brand is not enrolled.",
                    attr="host_apps",
                )


@transaction.atomic
def live_session_create(
    *,
    producer: Partner,
    title: str,
    scheduled_start: datetime,
    creator_id: str | None = None,
    product_ids: Sequence[str] = (),
    host_app_ids: Sequence[str] | None = None,
) -> LiveSession:
    """Schedule a live show hosted by a creator and broadcast on one or more host apps.

    A host app produces shows for itself; a fulfillment partner produces shows of the brands it
    fulfils and broadcasts them on several host apps. Orders placed on those host apps and
    naming the show are attributed to it and to its creator.
    """
    creator = None
    if creator_id:
        creator = Partner.objects.filter(pk=creator_id, kind=PartnerKind.CREATOR).first()
        if creator is None:
            raise AppValidationError(
                "invalid_reference", f"No creator {creator_id}.", attr="creator"
            )
    host_apps = _broadcast_host_apps(producer=producer, host_app_ids=host_app_ids)
    products = _session_products(producer=producer, product_ids=list(dict.fromkeys(product_ids)))
    _check_brands_sellable(host_apps=host_apps, brand_ids={p.brand_id for p in products})
    session = LiveSession.objects.create(
        producer=producer, creator=creator, title=title, scheduled_start=scheduled_start
    )
    session.host_apps.set(host_apps)
    session.products.set(products)
    return session


def _live_session_move(session: LiveSession, *, action: str, actor: Partner) -> LiveSession:
    session = LiveSession.objects.select_for_update().get(pk=session.pk)
    if session.producer_id != actor.pk:
        raise PermissionDenied("Only the partner that produced this live session may do this.")
    move = live_session_move(action, session.status)
    stamp = "started_at" if action == "start" else "ended_at"
    session.status = move.target
    setattr(session, stamp, timezone.now())
    session.save(update_fields=["status", stamp, "updated"])

    from orders.api.serializers import LiveSessionSerializer  # the API shape is the payload

    session = LiveSession.objects.prefetch_related("products", "host_apps").get(pk=session.pk)
    featured = Product.objects.filter(live_sessions=session).values_list(
        "brand_id", "brand__fulfillment_partner_id"
    )
    event_publish(
        type=f"live_session.{'started' if action == 'start' else 'ended'}",
        object_id=session.pk,
        data=LiveSessionSerializer(session).data,
        partner_ids=[
            session.producer_id,
            session.creator_id,
            *(h.pk for h in session.host_apps.all()),
            *(partner_id for pair in featured for partner_id in pair),
        ],
    )
    return session


@transaction.atomic
def live_session_start(*, session: LiveSession, actor: Partner) -> LiveSession:
    """Go live (scheduled -> live); tells the host apps, creator, brands and fulfillers."""
    return _live_session_move(session, action="start", actor=actor)


@transaction.atomic
def live_session_end(*, session: LiveSession, actor: Partner) -> LiveSession:
    """End the show (live -> ended). Orders may still name it afterwards (replays sell too)."""
    return _live_session_move(session, action="end", actor=actor)


# --- Orders ----------------------------------------------------------------------------------


def _lock(order: Order) -> Order:
    """The order's row, locked until the transaction ends: every change of an order holds it."""
    return Order.objects.select_for_update().get(pk=order.pk)


def order_payload(order: Order) -> dict:
    """The order's API representation, as partner events carry it."""
    from orders.api.serializers import OrderSerializer

    return OrderSerializer(Order.objects.prefetch_related("lines").get(pk=order.pk)).data


def _record(
    order: Order,
    *,
    type: str,
    from_status: str,
    actor: str,
    data: dict | None = None,
    publish: Sequence[str] | None = None,
) -> None:
    """Write the order's history event and publish partner events, in the caller's transaction.

    Must be called after the order (and its lines) are saved and with the order row locked.
    """
    OrderEvent.objects.create(
        order=order,
        type=type,
        from_status=from_status,
        to_status=order.status,
        actor=actor,
        data=data or {},
    )
    payload = order_payload(order)
    partner_ids = [
        order.host_app_id,
        order.brand_id,
        order.fulfillment_partner_id,
        order.creator_id,
    ]
    for event_type in publish or [f"order.{type}"]:
        event_publish(type=event_type, object_id=order.pk, data=payload, partner_ids=partner_ids)


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
    """Place an order on a host app at catalog prices and reserve its inventory.

    Products the host app may not sell (another brand's, or an invite-only host app's
    non-enrolled brand) are answered like unknown ones (400 ``invalid_reference``), so the
    catalog of brands a host app may not sell does not leak. Lines naming the same product are
    merged. The product rows are locked in id order before their inventory is checked, so
    concurrent buyers of the last units can never oversell (409 ``insufficient_inventory``).
    """
    quantities: dict[str, int] = {}
    first_index: dict[str, int] = {}
    for index, line in enumerate(lines):
        first_index.setdefault(line["product"], index)
        quantities[line["product"]] = quantities.get(line["product"], 0) + line["quantity"]

    # Lock in a fixed order (product id), so two orders sharing products cannot deadlock.
    products = list(
        Product.objects.select_for_update()
        .filter(pk__in=quantities)
        .filter(Product.objects.partner_filter(host_app))
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

    session = None
    if live_session_id:
        session = LiveSession.objects.filter(pk=live_session_id, host_apps=host_app).first()
        if session is None:
            raise AppValidationError(
                "invalid_reference",
                f"No live session {live_session_id} broadcast on this host app.",
                attr="live_session",
            )
    shipping = _minor(shipping_amount, currency, attr="shipping_amount")
    tax = _minor(tax_amount, currency, attr="tax_amount")

    for product in products:
        wanted = quantities[product.pk]
        if product.inventory < wanted:
            raise AppError(
                "insufficient_inventory",
                f"Only {product.inventory} of product {product.pk} left; {wanted} asked.",
                attr=f"lines.{first_index[product.pk]}.quantity",
            )
    subtotal = sum(quantities[p.pk] * p.price for p in products)
    if subtotal + shipping + tax >= MAX_ORDER_TOTAL:
        raise AppValidationError("invalid_amount", "The order total is too large.", attr=None)
    for product in products:
        product.inventory -= quantities[product.pk]
        product.save(update_fields=["inventory", "updated"])

    order = Order.objects.create(
        host_app=host_app,
        brand_id=brand_id,
        fulfillment_partner_id=Partner.objects.values_list("fulfillment_partner_id", flat=True).get(
            pk=brand_id
        ),
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
    )
    OrderLine.objects.bulk_create(
        [
            OrderLine(
                order=order,
                product=found[product_id],
                sku=found[product_id].sku,
                title=found[product_id].title,
                category=found[product_id].category,
                quantity=quantities[product_id],
                unit_price=found[product_id].price,
                subtotal=quantities[product_id] * found[product_id].price,
                position=position,
            )
            for position, product_id in enumerate(first_index)
        ]
    )
    _record(order, type="created", from_status="", actor=actor)
    return order


@transaction.atomic
def order_pay(*, order: Order, amount: str, payment_reference: str, actor: str) -> Order:
    """Record the buyer's payment of exactly the order's total.

    The commission plan in force is applied (its rates copied onto the lines) before the order is
    marked paid, and the sale is posted to the ledger after, all with the order row locked.
    """
    order = _lock(order)
    move = order_move("pay", order.status)
    paid = _minor(amount, order.currency, attr="amount")
    if paid != order.total:
        total = money.to_decimal_string(order.total, order.currency)
        raise AppError(
            "amount_mismatch",
            f"The order total is {total} {order.currency}; pay exactly that.",
            attr="amount",
        )
    commission_services.commission_plan_apply(order=order)
    from_status = order.status
    order.status = move.target
    order.paid_at = timezone.now()
    order.payment_reference = payment_reference
    order.save(update_fields=["status", "paid_at", "payment_reference", "updated"])
    commission_services.ledger_post_sale(order=order)
    _record(
        order,
        type="paid",
        from_status=from_status,
        actor=actor,
        data={
            "amount": money.to_decimal_string(paid, order.currency),
            "payment_reference": payment_reference,
        },
    )
    return order


def _advance(
    order: Order, *, action: str, stamp: str, type: str, actor: str, changes: dict | None = None
) -> Order:
    """A plain move of the table: lock, check, set status, time stamp and ``changes``, record."""
    order = _lock(order)
    move = order_move(action, order.status)
    from_status = order.status
    order.status = move.target
    setattr(order, stamp, timezone.now())
    for field, value in (changes or {}).items():
        setattr(order, field, value)
    order.save(update_fields=["status", stamp, *(changes or {}), "updated"])
    _record(order, type=type, from_status=from_status, actor=actor, data=changes)
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


def _restock(lines: Sequence[OrderLine], units: Mapping[str, int]) -> None:
    """Put ``units[line id]`` units of each line back into its product's inventory.

    Never more than the line has not had restocked yet. The products are locked in id order,
    after the order row (the caller holds it), like every other path that locks both.
    """
    per_product: dict[str, int] = {}
    changed = []
    for line in lines:
        count = min(units.get(line.pk, 0), line.quantity - line.restocked_quantity)
        if count > 0:
            line.restocked_quantity += count
            per_product[line.product_id] = per_product.get(line.product_id, 0) + count
            changed.append(line)
    if not changed:
        return
    for product in Product.objects.select_for_update().filter(pk__in=per_product).order_by("pk"):
        product.inventory += per_product[product.pk]
        product.save(update_fields=["inventory", "updated"])
    OrderLine.objects.bulk_update(changed, ["restocked_quantity"])


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
        _restock(lines, {line_id: units for line_id, (units, _) in parts.items()})
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


def _refund_everything_left(
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
def order_cancel(*, order: Order, reason: str = "", actor: str) -> Order:
    """Cancel an order that has not been accepted yet and put all its units back on sale.

    A pending order just releases its inventory. A paid order is refunded in full (whatever
    earlier partial refunds left), which publishes ``order.refunded`` before ``order.canceled``.
    """
    order = _lock(order)
    move = order_move("cancel", order.status)
    from_status = order.status
    lines = list(order.lines.all())
    refund = None
    if from_status == OrderStatus.PAID:
        refund = _refund_everything_left(
            order, lines, reason=reason or "Order canceled", actor=actor
        )
    # Nothing has left the warehouse: every unit not yet restocked goes back on sale.
    _restock(lines, {line.pk: line.quantity for line in lines})
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
    _record(
        order,
        type="canceled",
        from_status=from_status,
        actor=actor,
        data={"reason": reason, "refund": refund.pk if refund else None},
        publish=["order.refunded", "order.canceled"] if refund else ["order.canceled"],
    )
    return order


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
    order = _lock(order)
    order_move("refund", order.status)
    from_status = order.status
    order_lines = list(order.lines.all())
    if lines is not None:
        parts, shipping, tax = _line_refund_parts(order_lines, lines), 0, 0
    else:
        wanted = _minor(amount or "", order.currency, attr="amount")
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
        order.status = OrderStatus.REFUNDED
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
    _record(
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


def _complete(order: Order) -> Order:
    move = order_move("complete", order.status)
    from_status = order.status
    order.status = move.target
    order.completed_at = timezone.now()
    order.save(update_fields=["status", "completed_at", "updated"])
    commission_services.ledger_post_release(order=order)
    _record(order, type="completed", from_status=from_status, actor=SYSTEM_ACTOR)
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
