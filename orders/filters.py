"""Query-parameter filters for the catalog, live session and order lists."""

import django_filters

from orders.choices import LiveSessionStatus, OrderStatus
from orders.models import LiveSession, Order, Product


class ProductFilter(django_filters.FilterSet):
    brand = django_filters.CharFilter(field_name="brand_id")
    category = django_filters.CharFilter()
    sku = django_filters.CharFilter()
    currency = django_filters.CharFilter()

    class Meta:
        model = Product
        fields = ["brand", "category", "sku", "currency"]


class LiveSessionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=LiveSessionStatus.choices)
    creator = django_filters.CharFilter(field_name="creator_id")
    host_app = django_filters.CharFilter(field_name="host_apps", distinct=False)

    class Meta:
        model = LiveSession
        fields = ["status", "creator", "host_app"]


class OrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)
    live_session = django_filters.CharFilter(field_name="live_session_id")
    brand = django_filters.CharFilter(field_name="brand_id")
    host_app = django_filters.CharFilter(field_name="host_app_id")
    creator = django_filters.CharFilter(field_name="creator_id")
    fulfillment_partner = django_filters.CharFilter(field_name="fulfillment_partner_id")

    class Meta:
        model = Order
        fields = ["status", "live_session", "brand", "host_app", "creator"]
