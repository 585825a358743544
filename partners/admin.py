from django.contrib import admin
from rest_framework_api_key.models import APIKey as LibraryAPIKey

from livecommerce.admin import ReadOnlyAdmin, ReadOnlyInline
from partners.models import APIKey, Enrollment, Partner
from partners.webhooks.models import WebhookEndpoint

# The library's own key model authenticates nothing here (partners.APIKey does); its admin page
# would let staff "create keys" that no request can use.
if admin.site.is_registered(LibraryAPIKey):
    admin.site.unregister(LibraryAPIKey)


class EnrollmentInline(ReadOnlyInline):
    model = Enrollment
    fk_name = "host_app"


@admin.register(Partner)
class PartnerAdmin(ReadOnlyAdmin):
    """Partners are onboarded, suspended and changed through the API (audited)."""

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
class APIKeyAdmin(ReadOnlyAdmin):
    """Keys are issued and revoked through the API or ``create_staff_key`` (audited); the admin
    only shows them."""

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


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
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
