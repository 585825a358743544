from django.contrib import admin

from partners.models import APIKey, Enrollment, Partner


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    fk_name = "host_app"
    extra = 0
    autocomplete_fields = ["brand"]


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "kind",
        "status",
        "brand_access",
        "fulfillment_partner",
        "created",
    ]
    list_filter = ["kind", "status", "brand_access"]
    search_fields = ["id", "name", "email"]
    readonly_fields = ["id", "created", "updated"]
    inlines = [EnrollmentInline]


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """Keys are issued through the API or ``create_staff_key``; the admin only shows and revokes."""

    list_display = ["id", "name", "prefix", "partner", "role", "created", "last_used", "revoked"]
    list_filter = ["role", "revoked"]
    search_fields = ["id", "prefix", "name", "partner__name"]
    readonly_fields = [
        "id",
        "prefix",
        "partner",
        "role",
        "name",
        "created",
        "last_used",
        "revoked_at",
        "expiry_date",
    ]
    exclude = ["hashed_key"]

    def has_add_permission(self, request) -> bool:
        return False
