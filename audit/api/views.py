from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import viewsets

from audit import selectors
from audit.api.serializers import AuditEntrySerializer
from audit.filters import AuditEntryFilter
from partners.choices import StaffRole
from partners.permissions import ActionPermissionsMixin, allow

STAFF = allow(staff=(StaffRole.OPS, StaffRole.FINANCE))

ENTRY_EXAMPLE = {
    "id": "aud_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "created": "2026-11-23T12:00:00.000000Z",
    "api_key": "key_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "actor": "staff:ops",
    "action": "commission_plan.updated",
    "object_type": "commissionplan",
    "object_id": "cpl_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "changes": {"platform_rate_bps": [800, 750]},
}


@extend_schema_view(
    list=extend_schema(
        summary="The audit trail: who changed partners, API keys and commission plans",
        tags=["audit"],
        description="Staff only. Newest first; `api_key` is the key the change was made with.",
        examples=[OpenApiExample("A plan edit", value=ENTRY_EXAMPLE, response_only=True)],
    ),
    retrieve=extend_schema(
        summary="Get an audit entry",
        tags=["audit"],
        examples=[OpenApiExample("A plan edit", value=ENTRY_EXAMPLE, response_only=True)],
    ),
)
class AuditEntryViewSet(ActionPermissionsMixin, viewsets.ReadOnlyModelViewSet):
    """Read-only: entries are written by the services that make the changes."""

    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilter
    action_permissions = {"list": STAFF, "retrieve": STAFF}

    def get_queryset(self):
        return selectors.audit_entry_list()
