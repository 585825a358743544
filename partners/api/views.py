from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from livecommerce.api import validated_input
from livecommerce.errors import AppValidationError
from livecommerce.pagination import CREATED_RANGE
from livecommerce.schema import error_responses
from partners import selectors, services
from partners.api.serializers import (
    APIKeyCreatedSerializer,
    APIKeyCreateSerializer,
    APIKeySerializer,
    EnrollmentInputSerializer,
    EnrollmentSerializer,
    MeSerializer,
    PartnerCreateSerializer,
    PartnerDirectoryEntrySerializer,
    PartnerSerializer,
    PartnerUpdateSerializer,
)
from partners.choices import PartnerKind, StaffRole
from partners.filters import PartnerFilter
from partners.models import APIKey, Partner
from partners.permissions import ActionPermissionsMixin, allow

OPS = allow(staff=(StaffRole.OPS,))
STAFF = allow(staff=(StaffRole.OPS, StaffRole.FINANCE))
EVERYONE = allow(staff=(StaffRole.OPS, StaffRole.FINANCE), partners=tuple(PartnerKind.values))
# Staff and a partner itself see the full record; a partner sees the others it deals with as
# directory entries.
PARTNER_OR_ENTRY = PolymorphicProxySerializer(
    component_name="PartnerOrDirectoryEntry",
    serializers=[PartnerSerializer, PartnerDirectoryEntrySerializer],
    resource_type_field_name=None,
)
DIRECTORY_DESCRIPTION = (
    "Staff see every partner in full. A partner sees the partners it deals with as `id`, "
    "`kind`, `name`: a host app the brands it may sell, their fulfillment partners and the "
    "creators of its live sessions; a fulfillment partner its brands and the host apps it "
    "broadcasts to; a brand its fulfillment partner; a creator the host apps of its live "
    "sessions. Its own record it sees in full (`GET /partners/{id}` with its own id); any "
    "other partner is 404. Filters: staff may use every one; a partner only `kind` and `name` "
    "(the directory's own fields), and `status`, `fulfillment_partner`, `created_after` or "
    "`created_before` answer 400 `filter_not_allowed`."
)
# The filters a partner reading the directory may not use: they would reveal more of the
# partners it deals with than their id, kind and name.
STAFF_ONLY_FILTERS = ("status", "fulfillment_partner", *CREATED_RANGE)
# What the partner services refuse: a field for another kind of partner, an unknown reference.
PARTNER_400 = error_responses("kind_mismatch", "invalid_reference")

PARTNER_EXAMPLE = OpenApiExample(
    "A brand",
    value={
        "kind": "brand",
        "name": "Glow Cosmetics",
        "email": "ops@glow.example",
        "fulfillment_partner": "prt_01jd3x6q2c7h9k4m8n2p5r7t9v",
    },
    request_only=True,
)


@extend_schema_view(
    list=extend_schema(
        summary="List the partners you deal with",
        description=DIRECTORY_DESCRIPTION,
        tags=["directory"],
        responses={200: PARTNER_OR_ENTRY, **error_responses("filter_not_allowed")},
    ),
    retrieve=extend_schema(
        summary="Get a partner",
        description=DIRECTORY_DESCRIPTION,
        tags=["directory"],
        responses={200: PARTNER_OR_ENTRY},
    ),
)
class PartnerViewSet(ActionPermissionsMixin, viewsets.ReadOnlyModelViewSet):
    """Partners: the directory for partners; onboarding, suspension, enrollments and API keys
    for ops (finance reads)."""

    serializer_class = PartnerSerializer
    filterset_class = PartnerFilter
    action_permissions = {
        "list": EVERYONE,
        "retrieve": EVERYONE,
        "create": OPS,
        "partial_update": OPS,
        "enrollments": STAFF,
        "enrollments_create": OPS,
        "enrollments_delete": OPS,
        "api_keys": OPS,
        "api_keys_create": OPS,
    }

    def _directory(self) -> str:
        """How this request sees partners: "full" (staff, or a partner's own record) or
        "entries" (a partner reading the partners it deals with)."""
        caller = getattr(self.request, "user", None)
        if self.action not in ("list", "retrieve") or getattr(caller, "partner", None) is None:
            return "full"
        if self.action == "retrieve" and self.kwargs.get("pk") == caller.partner_id:
            return "full"
        return "entries"

    def get_queryset(self):
        if self._directory() == "entries":
            return selectors.partner_directory(partner=self.request.user.partner)
        return selectors.partner_list(caller=self.request.user)

    def filter_queryset(self, queryset):
        if self._directory() == "entries":
            for param in STAFF_ONLY_FILTERS:
                if param in self.request.query_params:
                    raise AppValidationError(
                        "filter_not_allowed",
                        f"{param} is a staff filter; the directory filters by kind and name.",
                        attr=param,
                    )
        return super().filter_queryset(queryset)

    def get_serializer_class(self):
        if self._directory() == "entries":
            return PartnerDirectoryEntrySerializer
        return PartnerSerializer

    @extend_schema(
        summary="Onboard a partner",
        tags=["partners"],
        request=PartnerCreateSerializer,
        responses={201: PartnerSerializer, **PARTNER_400},
        examples=[PARTNER_EXAMPLE],
    )
    def create(self, request):
        data = validated_input(PartnerCreateSerializer, request.data)
        partner = services.partner_create(**data, actor=request.user)
        return Response(self._out(partner), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Update or suspend a partner",
        tags=["partners"],
        request=PartnerUpdateSerializer,
        responses={200: PartnerSerializer, **PARTNER_400},
        examples=[OpenApiExample("Suspend", value={"status": "suspended"}, request_only=True)],
    )
    def partial_update(self, request, pk=None):
        partner = self.get_object()
        data = validated_input(PartnerUpdateSerializer, request.data)
        partner = services.partner_update(partner=partner, **data, actor=request.user)
        return Response(self._out(partner))

    def _out(self, partner: Partner) -> dict:
        partner = selectors.partner_list(caller=self.request.user).get(pk=partner.pk)
        return PartnerSerializer(partner).data

    @extend_schema(
        summary="List a host app's enrolled brands",
        tags=["partners"],
        responses={200: EnrollmentSerializer(many=True)},
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def enrollments(self, request, pk=None):
        host_app = self.get_object()
        page = self.paginate_queryset(selectors.enrollment_list(host_app=host_app))
        return self.get_paginated_response(EnrollmentSerializer(page, many=True).data)

    @extend_schema(
        summary="Enroll a brand with an invite-only host app",
        tags=["partners"],
        request=EnrollmentInputSerializer,
        responses={201: EnrollmentSerializer, 200: EnrollmentSerializer, **PARTNER_400},
        examples=[
            OpenApiExample(
                "Enroll", value={"brand": "prt_01jd3x6q2c7h9k4m8n2p5r7t9v"}, request_only=True
            )
        ],
    )
    @enrollments.mapping.post
    def enrollments_create(self, request, pk=None):
        host_app = self.get_object()
        data = validated_input(EnrollmentInputSerializer, request.data)
        enrollment, created = services.enrollment_create(
            host_app=host_app, brand=data["brand"], actor=request.user
        )
        return Response(
            EnrollmentSerializer(enrollment).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Withdraw a brand from a host app",
        tags=["partners"],
        parameters=[OpenApiParameter("brand", str, required=True, description="The brand's id")],
        request=None,
        responses={204: None, **error_responses("required", "kind_mismatch", "invalid_reference")},
    )
    @enrollments.mapping.delete
    def enrollments_delete(self, request, pk=None):
        host_app = self.get_object()
        brand_id = request.query_params.get("brand")
        if not brand_id and isinstance(request.data, dict):
            brand_id = request.data.get("brand")
        if not brand_id:
            raise AppValidationError("required", "Name the brand: ?brand=prt_...", attr="brand")
        brand = Partner.objects.filter(pk=brand_id).first()
        if brand is None:
            raise AppValidationError("invalid_reference", "No such brand.", attr="brand")
        if not services.enrollment_delete(host_app=host_app, brand=brand, actor=request.user):
            return Response(
                status=status.HTTP_404_NOT_FOUND,
                data={
                    "type": "client_error",
                    "errors": [
                        {"code": "not_found", "detail": "That brand is not enrolled.", "attr": None}
                    ],
                },
            )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="List a partner's API keys",
        tags=["api keys"],
        responses={200: APIKeySerializer(many=True)},
    )
    @action(detail=True, methods=["get"], url_path="api-keys", filterset_class=None)
    def api_keys(self, request, pk=None):
        partner = self.get_object()
        page = self.paginate_queryset(selectors.api_key_list(partner=partner))
        return self.get_paginated_response(APIKeySerializer(page, many=True).data)

    @extend_schema(
        summary="Issue an API key for a partner (shown once)",
        tags=["api keys"],
        request=APIKeyCreateSerializer,
        responses={201: APIKeyCreatedSerializer},
        examples=[
            OpenApiExample(
                "Issued",
                response_only=True,
                status_codes=["201"],
                value={
                    "id": "key_01jd3x6q2c7h9k4m8n2p5r7t9v",
                    "key": "Ab3dEf9h.s3cr3t...",
                    "prefix": "Ab3dEf9h",
                    "name": "production",
                    "partner": "prt_01jd3x6q2c7h9k4m8n2p5r7t9v",
                    "created": "2026-11-23T12:00:00.000000Z",
                },
            )
        ],
    )
    @api_keys.mapping.post
    def api_keys_create(self, request, pk=None):
        partner = self.get_object()
        data = validated_input(APIKeyCreateSerializer, request.data)
        api_key, raw_key = services.api_key_create(
            name=data["name"], partner=partner, actor=request.user
        )
        response = Response(_created_key(api_key, raw_key), status=status.HTTP_201_CREATED)
        response.idempotency_redact = ("key",)  # shown once: never stored, replayed as null
        return response


def _created_key(api_key: APIKey, raw_key: str) -> dict:
    return APIKeyCreatedSerializer(
        {
            "id": api_key.pk,
            "key": raw_key,
            "prefix": api_key.prefix,
            "name": api_key.name,
            "partner": api_key.partner_id,
            "created": api_key.created,
        }
    ).data


@extend_schema_view(
    retrieve=extend_schema(summary="Get an API key", tags=["api keys"]),
    destroy=extend_schema(summary="Revoke an API key", tags=["api keys"], responses={204: None}),
)
class APIKeyViewSet(
    ActionPermissionsMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """API keys by id: look one up, or revoke it (ops)."""

    serializer_class = APIKeySerializer
    action_permissions = {"retrieve": OPS, "destroy": OPS}

    def get_queryset(self):
        return APIKey.objects.select_related("partner")

    def destroy(self, request, pk=None):
        services.api_key_revoke(api_key=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """Tells any caller who it is."""

    @extend_schema(summary="Who am I", tags=["directory"], responses={200: MeSerializer})
    def get(self, request):
        caller = request.user
        api_key = request.auth
        return Response(
            MeSerializer(
                {
                    "type": "staff" if caller.is_staff else "partner",
                    "role": caller.role or None,
                    "partner": caller.partner,
                    "api_key": api_key,
                }
            ).data
        )
