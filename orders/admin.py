"""Read-mostly admin views for support staff; every change goes through the API's services."""

from django.contrib import admin

from orders.models import LiveSession, Order, OrderEvent, OrderLine, Product, Refund, RefundLine


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("id", "brand", "sku", "title", "price", "currency", "inventory")
    list_filter = ("currency", "category")
    search_fields = ("id", "sku", "title")
    readonly_fields = ("created", "updated")


@admin.register(LiveSession)
class LiveSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "producer", "creator", "status", "scheduled_start")
    list_filter = ("status",)
    search_fields = ("id", "title")


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class OrderEventInline(OrderLineInline):
    model = OrderEvent


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Orders change only through their services (locks, status table, ledger), never here."""

    list_display = ("id", "status", "host_app", "brand", "currency", "total", "created")
    list_filter = ("status", "currency")
    search_fields = ("id", "buyer_reference", "payment_reference")
    inlines = (OrderLineInline, OrderEventInline)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class RefundLineInline(OrderLineInline):
    model = RefundLine


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ("id", "order", "amount", "restock", "created")
    search_fields = ("id", "order__id")
    inlines = (RefundLineInline,)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
