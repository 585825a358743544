"""What every order service shares: the order lock, the order's history
and partner events, and putting units back on sale."""

from collections.abc import Mapping, Sequence

from orders.models import Order, OrderEvent, OrderLine, Product
from orders.payloads import order_payload as build_order_payload
from orders.services.stock import stock_changed
from partners.events import event_publish_many, stamp

SYSTEM_ACTOR = "system"


def lock_order(order: Order) -> Order:
    """The order's row, locked until the transaction ends: every change of an order holds it."""
    return Order.objects.select_for_update().get(pk=order.pk)


def order_payload(order: Order) -> dict:
    """The order's API representation, as partner events carry it, read again from the database
    (for a service whose in-memory order may lag behind the row)."""
    order = Order.objects.prefetch_related("lines").get(pk=order.pk)
    return build_order_payload(order, list(order.lines.all()))


def record_order_event(
    order: Order,
    *,
    type: str,
    from_status: str,
    actor: str,
    data: dict | None = None,
    publish: Sequence[str] | None = None,
    lines: Sequence[OrderLine] | None = None,
    new_rows: Sequence = (),
) -> dict:
    """Write the order's history event and publish partner events, in the caller's transaction;
    returns the order's representation the events carry.

    Must be called after the order (and its lines) are saved and with the order row locked.
    ``lines``: the order's lines as saved, when the caller holds them and ``order`` is up to date
    (the representation is then built from them, with no read); else both are read again.
    ``new_rows``: the change's own new rows (``stamp``-ed: a new order and its lines), written
    with the history event and the partner events in one statement.
    """
    history = OrderEvent(
        order=order,
        type=type,
        from_status=from_status,
        to_status=order.status,
        actor=actor,
        data=data or {},
    )
    stamp(history)
    payload = order_payload(order) if lines is None else build_order_payload(order, lines)
    partner_ids = [
        order.host_app_id,
        order.brand_id,
        order.fulfillment_partner_id,
        order.creator_id,
    ]
    event_publish_many(
        events=[
            (event_type, order.pk, payload, partner_ids)
            for event_type in publish or [f"order.{type}"]
        ],
        rows=[*new_rows, history],
    )
    return payload


def restock_lines(lines: Sequence[OrderLine], units: Mapping[str, int]) -> None:
    """Put ``units[line id]`` units of each line back into its product's inventory.

    Never more than the line has not had restocked yet. The products are locked in id order,
    after the order row (the caller holds it), like every other path that locks both. A product
    that comes back from zero publishes ``product.back_in_stock``.
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
    changes = {}
    for product in Product.objects.select_for_update().filter(pk__in=per_product).order_by("pk"):
        before = product.inventory
        product.inventory += per_product[product.pk]
        product.save(update_fields=["inventory", "updated"])
        changes[product.pk] = (before, product.inventory)
    OrderLine.objects.bulk_update(changed, ["restocked_quantity"])
    stock_changed(changes)
