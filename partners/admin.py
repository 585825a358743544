from django.contrib import admin

from partners.models import APIKey, Enrollment, Partner, WebhookEndpoint


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


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Support's view of the partners' webhook endpoints, read-only.

    The signing secrets are never shown here: a partner reads its secret once, at creation or
    rotation, through the API.
    """

    list_display = ["id", "partner", "url", "status", "failing_since", "created"]
    list_filter = ["status"]
    search_fields = ["id", "url", "partner__name"]
    exclude = ["secret", "previous_secret"]
    readonly_fields = [
        "id",
        "partner",
        "url",
        "events",
        "status",
        "description",
        "previous_secret_expires",
        "failing_since",
        "disabled_reason",
        "created",
        "updated",
    ]

    def has_add_permission(self, request) -> bool:
        return False
