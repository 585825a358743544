"""The representations of orders and live shows, built from the rows a service already holds.

The same dict is the ``data`` of the partner events and the body of the API's answer, so the
services never import the API layer. An order's: ``OrderSerializer`` documents it and serialises
lists and reads (a test keeps the two equal), so a create or a pay neither re-reads the order and
its lines nor serialises them twice. A live show's: ``LiveSessionSerializer`` answers with
``live_session_payload`` itself.
"""

from collections.abc import Mapping, Sequence

from django.db import models

from livecommerce.money import to_decimal_string
from livecommerce.wire import timestamp
from orders.models import LiveSession, Order, OrderLine

# The order's times (created, updated, paid_at ... expires_at), in the model's field order.
_TIMES = tuple(f.name for f in Order._meta.concrete_fields if isinstance(f, models.DateTimeField))


def order_line_payload(line: OrderLine, currency: str) -> dict:
    return {
        "id": line.pk,
        "product": line.product_id,
        "sku": line.sku,
        "title": line.title,
        "quantity": line.quantity,
        "unit_price": to_decimal_string(line.unit_price, currency),
        "list_price": to_decimal_string(line.catalog_price, currency),
        "subtotal": to_decimal_string(line.subtotal, currency),
        "refunded_quantity": line.refunded_quantity,
        "refunded_amount": to_decimal_string(line.refunded_amount, currency),
    }


def order_payload(order: Order, lines: Sequence[OrderLine]) -> dict:
    """The order's API representation (as partner events carry it, before least-data views).

    ``lines``: all of the order's lines, as saved; shown in ``position`` order.
    """
    currency = order.currency
    payload = {
        "id": order.pk,
        "status": str(order.status),
        "host_app": order.host_app_id,
        "brand": order.brand_id,
        "fulfillment_partner": order.fulfillment_partner_id,
        "live_session": order.live_session_id,
        "creator": order.creator_id,
        "currency": currency,
        "subtotal": to_decimal_string(order.subtotal, currency),
        "shipping_amount": to_decimal_string(order.shipping_amount, currency),
        "tax_amount": to_decimal_string(order.tax_amount, currency),
        "total": to_decimal_string(order.total, currency),
        "refunded_amount": to_decimal_string(order.refunded_amount, currency),
        "buyer": {"reference": order.buyer_reference, "email": order.buyer_email},
        "shipping_address": order.shipping_address,
        "payment_reference": order.payment_reference,
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
    }
    for name in _TIMES:
        payload[name] = timestamp(getattr(order, name))
    payload["lines"] = [
        order_line_payload(line, currency)
        for line in sorted(lines, key=lambda line: (line.position, line.pk))
    ]
    return payload


def live_prices_payload(live_prices: Mapping | None) -> dict[str, str]:
    """A show's live prices: product id -> decimal string in the product's currency."""
    return {
        product_id: to_decimal_string(price["amount"], price["currency"])
        for product_id, price in sorted((live_prices or {}).items())
    }


def live_session_payload(session: LiveSession) -> dict:
    """A live show as the API shows it and its ``live_session.*`` events carry it.

    ``session.products`` and ``session.host_apps`` are read through ``.all()``: prefetch them.
    """
    return {
        "id": session.pk,
        "producer": session.producer_id,
        "creator": session.creator_id,
        "title": session.title,
        "scheduled_start": timestamp(session.scheduled_start),
        "status": str(session.status),
        "products": sorted(p.pk for p in session.products.all()),
        "host_apps": sorted(p.pk for p in session.host_apps.all()),
        "started_at": timestamp(session.started_at),
        "ended_at": timestamp(session.ended_at),
        "hold_seconds": session.hold_seconds,
        "live_prices": live_prices_payload(session.live_prices),
        "created": timestamp(session.created),
        "updated": timestamp(session.updated),
    }
