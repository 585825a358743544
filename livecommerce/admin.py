"""What every admin page of the service shares."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Support's view of a model, read-only: partners, keys, products, sessions and orders
    change only through the API's services, which lock, check and write the audit log (an
    admin edit went around all three). Staff with the model's view permission read it here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
