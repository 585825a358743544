"""An order's representation, built once per request from the rows the service already holds.

The same dict is the ``data`` of the order's partner events and the body of the API's answer
(``OrderSerializer`` documents it and serialises lists and reads; a test keeps the two equal),
so a create or a pay neither re-reads the order and its lines nor serialises them twice.
"""

from collections.abc import Sequence

from django.db import models
from rest_framework import serializers

from livecommerce.money import to_decimal_string
from orders.models import Order, OrderLine

_datetime = serializers.DateTimeField()

# The order's times (created, updated, paid_at ... expires_at), in the model's field order.
_TIMES = tuple(f.name for f in Order._meta.concrete_fields if isinstance(f, models.DateTimeField))


def _time(value):
    return None if value is None else _datetime.to_representation(value)


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
        payload[name] = _time(getattr(order, name))
    payload["lines"] = [
        order_line_payload(line, currency)
        for line in sorted(lines, key=lambda line: (line.position, line.pk))
    ]
    return payload
