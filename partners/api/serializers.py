from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from livecommerce import money
from partners.choices import BrandAccess, PartnerKind, PartnerStatus, PayoutSchedule, StaffRole
from partners.models import APIKey, Enrollment, Partner


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string", "example": "25.00"},
        "description": "Per currency, the smallest balance paid out; a smaller one rolls over.",
        "example": {"USD": "25.00", "JPY": "3000"},
    }
)
class MinimumPayoutField(serializers.Field):
    """``{"USD": "25.00"}`` on the wire, ``{"USD": 2500}`` (minor units) in the model."""

    def to_representation(self, value: dict) -> dict[str, str]:
        return {cur: money.to_decimal_string(minor, cur) for cur, minor in sorted(value.items())}

    def to_internal_value(self, data) -> dict[str, int]:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                'Expected an object of currency to amount, e.g. {"USD": "25.00"}.', code="invalid"
            )
        result = {}
        for currency, amount in data.items():
            if not isinstance(amount, str):
                raise serializers.ValidationError(
                    f"{currency}: amounts are decimal strings.", code="invalid_amount"
                )
            try:
                result[currency] = money.to_minor(amount, currency)
            except money.MoneyError as exc:
                raise serializers.ValidationError(
                    f"{currency}: {exc.detail}", code=exc.code
                ) from None
        return result


class PartnerSerializer(serializers.ModelSerializer):
    """A partner as the API shows it."""

    brand_access = serializers.SerializerMethodField()
    enrolled_brands = serializers.SerializerMethodField()
    minimum_payout = MinimumPayoutField(read_only=True)
    # A plain string: empty when no contact address was given (format "email" would refuse "").
    email = serializers.CharField(read_only=True)

    class Meta:
        model = Partner
        fields = [
            "id",
            "kind",
            "name",
            "email",
            "status",
            "brand_access",
            "fulfillment_partner",
            "enrolled_brands",
            "payout_schedule",
            "minimum_payout",
            "created",
            "updated",
        ]
        read_only_fields = fields

    def get_brand_access(self, obj: Partner) -> BrandAccess | None:
        return obj.brand_access or None

    def get_enrolled_brands(self, obj: Partner) -> list[str] | None:
        """The brands an ``invite_only`` host app may sell; null for other partners."""
        if obj.kind != PartnerKind.HOST_APP or obj.brand_access != BrandAccess.INVITE_ONLY:
            return None
        return sorted(e.brand_id for e in obj.enrollments.all())


class PartnerDirectoryEntrySerializer(serializers.ModelSerializer):
    """Another partner as a partner sees it in the directory: who it is, nothing more."""

    class Meta:
        model = Partner
        fields = ["id", "kind", "name"]
        read_only_fields = fields


class PartnerCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PartnerKind.choices)
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=PartnerStatus.choices, required=False)
    brand_access = serializers.ChoiceField(choices=BrandAccess.choices, required=False)
    fulfillment_partner = serializers.PrimaryKeyRelatedField(
        queryset=Partner.objects.all(), required=False, allow_null=True
    )
    payout_schedule = serializers.ChoiceField(choices=PayoutSchedule.choices, required=False)
    minimum_payout = MinimumPayoutField(required=False)


# The create's fields, all optional, but ``kind``: a partner keeps its kind. (No docstring: it
# would become the schema's description of the body.)
class PartnerUpdateSerializer(PartnerCreateSerializer):
    kind = None
    name = serializers.CharField(max_length=200, required=False)


class EnrollmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Enrollment
        fields = ["id", "host_app", "brand", "created"]
        read_only_fields = fields


class EnrollmentInputSerializer(serializers.Serializer):
    brand = serializers.PrimaryKeyRelatedField(queryset=Partner.objects.all())


class APIKeySerializer(serializers.ModelSerializer):
    """A key as listed: never the key itself."""

    role = serializers.SerializerMethodField()

    class Meta:
        model = APIKey
        fields = [
            "id",
            "name",
            "prefix",
            "partner",
            "role",
            "created",
            "last_used",
            "revoked",
            "revoked_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=StaffRole.choices, allow_null=True))
    def get_role(self, obj: APIKey) -> str | None:
        """The staff role of a staff key; null for a partner's key."""
        return obj.role or None


class APIKeyCreatedSerializer(serializers.Serializer):
    """A new key: ``key`` appears here once and is never shown again."""

    id = serializers.CharField()
    key = serializers.CharField(
        allow_null=True,
        help_text="The key, shown this once. Null when the answer is replayed for its "
        "Idempotency-Key: the key is never stored; revoke it and issue another if it was lost.",
    )
    prefix = serializers.CharField()
    name = serializers.CharField()
    partner = serializers.CharField(allow_null=True)
    created = serializers.DateTimeField()


class APIKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=50, required=False, default="API key")


class MeSerializer(serializers.Serializer):
    """Who the caller is."""

    type = serializers.ChoiceField(choices=["partner", "staff"])
    role = serializers.ChoiceField(choices=StaffRole.choices, allow_null=True)
    partner = PartnerSerializer(allow_null=True)
    api_key = APIKeySerializer()
