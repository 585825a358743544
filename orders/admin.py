"""Read-mostly admin views for support staff; every change goes through the API's services."""

from django.contrib import admin

from livecommerce.admin import ReadOnlyAdmin, ReadOnlyInline
from orders.models import LiveSession, Order, OrderEvent, OrderLine, Product, Refund, RefundLine


@admin.register(Product)
class ProductAdmin(ReadOnlyAdmin):
    list_display = ("id", "brand", "sku", "title", "price", "currency", "inventory")
    list_filter = ("currency", "category")
    search_fields = ("id", "sku", "title")
    readonly_fields = ("created", "updated")


@admin.register(LiveSession)
class LiveSessionAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "producer", "creator", "status", "scheduled_start")
    list_filter = ("status",)
    search_fields = ("id", "title")


class OrderLineInline(ReadOnlyInline):
    model = OrderLine


class OrderEventInline(OrderLineInline):
    model = OrderEvent


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """Orders change only through their services (locks, status table, ledger), never here."""

    list_display = ("id", "status", "host_app", "brand", "currency", "total", "created")
    list_filter = ("status", "currency")
    search_fields = ("id", "buyer_reference", "payment_reference")
    inlines = (OrderLineInline, OrderEventInline)


class RefundLineInline(OrderLineInline):
    model = RefundLine


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("id", "order", "amount", "restock", "created")
    search_fields = ("id", "order__id")
    inlines = (RefundLineInline,)
