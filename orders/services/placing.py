"""Placing an order: its lines priced, its inventory taken, its history and event written.

The products are read without a lock; each product's units are taken at the end by one
conditional ``UPDATE ... WHERE inventory >= q`` in product id order (so two orders sharing
products cannot deadlock), just before the one statement that writes the order, its lines, its
history and its events.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from livecommerce.api import parse_amount
from livecommerce.errors import AppError, AppValidationError
from orders.choices import LiveSessionStatus
from orders.models import LiveSession, Order, OrderLine, Product
from orders.services._shared import record_order_event
from orders.services.stock import stock_changed
from partners.choices import PartnerStatus
from partners.events import stamp
from partners.models import Partner

MAX_ORDER_TOTAL = 10**18
"""Bound on an order's total in minor units, well inside PostgreSQL's bigint."""


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

    On PostgreSQL every refusal is decided before the first write (the inventory is taken all or
    nothing, by one statement): the block needs no savepoint, and a refusal leaves it having
    written nothing and is raised after it, so the caller's transaction (the request's, which
    keeps the idempotent answer) stays usable. Elsewhere (SQLite) a product found short after
    others' units were taken rolls them back with the block's savepoint.
    """
    all_or_nothing = transaction.get_connection().vendor == "postgresql"
    refusal = None
    with transaction.atomic(savepoint=not all_or_nothing):
        try:
            return _place(
                take=_take_all_or_nothing if all_or_nothing else _take_each,
                host_app=host_app,
                lines=lines,
                live_session_id=live_session_id,
                buyer_reference=buyer_reference,
                buyer_email=buyer_email,
                shipping_address=shipping_address,
                shipping_amount=shipping_amount,
                tax_amount=tax_amount,
                actor=actor,
            )
        except (AppError, AppValidationError) as error:
            if not all_or_nothing:
                raise
            refusal = error
    raise refusal


def _place(
    *,
    take: Callable[[Mapping[str, int], Mapping[str, int]], dict[str, tuple[int, int]]],
    host_app: Partner,
    lines: Sequence[Mapping],
    live_session_id: str | None,
    buyer_reference: str,
    buyer_email: str,
    shipping_address: dict | None,
    shipping_amount: str,
    tax_amount: str,
    actor: str,
) -> Order:
    """``order_create``'s work; ``take`` takes the units (``_take_all_or_nothing`` or
    ``_take_each``)."""
    quantities: dict[str, int] = {}
    first_index: dict[str, int] = {}
    for index, line in enumerate(lines):
        first_index.setdefault(line["product"], index)
        quantities[line["product"]] = quantities.get(line["product"], 0) + line["quantity"]

    # Read without a lock: the inventory is taken at the end by a conditional UPDATE (``take``).
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
    stock_changed(take(quantities, first_index))
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


def _take_all_or_nothing(
    quantities: Mapping[str, int], first_index: Mapping[str, int]
) -> dict[str, tuple[int, int]]:
    """Take every product's units in ONE statement (PostgreSQL), all or none: the product rows
    are locked in id order (``ORDER BY ... FOR UPDATE``, so two orders sharing products cannot
    deadlock), and the units are taken only if every product has that many left, so concurrent
    buyers of the last units can never oversell. Returns product id -> (units before, units
    after); raises 409 ``insufficient_inventory`` (the first short product in id order, with the
    units ``available``) having taken nothing."""
    ids = sorted(quantities)
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH wanted AS (SELECT * FROM unnest(%s::text[], %s::integer[]) AS w(id, quantity)),"
            " locked AS MATERIALIZED (SELECT p.id, p.inventory, w.quantity"
            " FROM orders_product AS p JOIN wanted AS w ON w.id = p.id"
            " ORDER BY p.id FOR UPDATE OF p),"
            " taken AS (UPDATE orders_product AS p"
            " SET inventory = p.inventory - l.quantity, updated = %s"
            " FROM locked AS l WHERE p.id = l.id"
            " AND NOT EXISTS (SELECT 1 FROM locked WHERE inventory < quantity)"
            " RETURNING p.id, p.inventory)"
            " SELECT l.id, l.inventory, t.inventory FROM locked AS l"
            " LEFT JOIN taken AS t ON t.id = l.id ORDER BY l.id",
            [ids, [quantities[pid] for pid in ids], timezone.now()],
        )
        rows = {pid: (before, after) for pid, before, after in cursor.fetchall()}
    for product_id in ids:
        before, after = rows.get(product_id, (0, None))
        if after is None and before < quantities[product_id]:
            _insufficient(product_id, before, quantities, first_index)
    return rows


def _take_each(
    quantities: Mapping[str, int], first_index: Mapping[str, int]
) -> dict[str, tuple[int, int]]:
    """Take each product's units with one conditional UPDATE, in product id order (so two
    orders sharing products cannot deadlock): it takes the row lock, and takes the units only if
    that many are left, so concurrent buyers of the last units can never oversell. Returns
    product id -> (units before, units after); raises 409 ``insufficient_inventory`` (with the
    units ``available``) when a product has fewer left, which rolls the order back (the
    caller's savepoint)."""
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
