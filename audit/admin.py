from django.contrib import admin

from audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit trail, read-only: entries are written by the services, never by hand."""

    list_display = ["created", "action", "object_id", "actor", "api_key"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_id", "api_key", "actor"]
    # every field: an entry is never edited
    readonly_fields = [field.name for field in AuditEntry._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
