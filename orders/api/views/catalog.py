"""The catalog: a brand's products, read by who may sell them, kept by the brand or its
fulfillment partner."""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from livecommerce.api import validated_input
from livecommerce.errors import AppValidationError
from livecommerce.schema import error_responses
from orders import selectors, services
from orders.api.examples import PRODUCT_VALUE
from orders.api.serializers import (
    ProductCreateSerializer,
    ProductSerializer,
    ProductUpdateSerializer,
)
from orders.api.views.common import MONEY_400, STAFF, post_errors
from orders.filters import ProductFilter
from partners.choices import PartnerKind
from partners.permissions import ActionPermissionsMixin, allow

CATALOG_READ = allow(
    staff=STAFF, partners=(PartnerKind.HOST_APP, PartnerKind.FULFILLMENT, PartnerKind.BRAND)
)
CATALOG_WRITE = allow(partners=(PartnerKind.FULFILLMENT, PartnerKind.BRAND))

EXPANDABLE = ("brand",)
EXPAND_PARAMETER = OpenApiParameter(
    "expand",
    {"type": "string", "enum": list(EXPANDABLE)},
    description='`brand` embeds the brand as `{"id", "name"}` instead of its id.',
)


@extend_validation_errors(["invalid_expand"], field_name="expand", actions=["list", "retrieve"])
@extend_schema_view(
    list=extend_schema(
        summary="List products",
        tags=["catalog"],
        description="A host app sees the products it may sell (an invite-only host app: its "
        "enrolled brands'); a brand its own; a fulfillment partner its brands'; staff all.",
        parameters=[EXPAND_PARAMETER],
        examples=[OpenApiExample("A product", value=PRODUCT_VALUE, response_only=True)],
    ),
    retrieve=extend_schema(
        summary="Get a product",
        tags=["catalog"],
        parameters=[EXPAND_PARAMETER],
        examples=[OpenApiExample("A product", value=PRODUCT_VALUE, response_only=True)],
    ),
)
class ProductViewSet(
    ActionPermissionsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """A brand's catalog, kept by the brand or its fulfillment partner."""

    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    action_permissions = {
        "list": CATALOG_READ,
        "retrieve": CATALOG_READ,
        "create": CATALOG_WRITE,
        "partial_update": CATALOG_WRITE,
    }

    def get_queryset(self):
        products = selectors.product_list(caller=self.request.user)
        if "brand" in self._expand():
            products = products.select_related("brand")
        return products

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "expand": self._expand()}

    def _expand(self) -> set[str]:
        """``?expand=brand``: what to embed; anything else is a 400 naming what may be."""
        request = getattr(self, "request", None)
        raw = request.query_params.get("expand") if request is not None else None
        if raw is None or self.action not in ("list", "retrieve"):
            return set()
        asked = {part.strip() for part in raw.split(",")}
        if not asked <= set(EXPANDABLE):
            raise AppValidationError(
                "invalid_expand", f"expand takes: {', '.join(EXPANDABLE)}.", attr="expand"
            )
        return asked

    @extend_schema(
        summary="Add a product",
        tags=["catalog"],
        description="A brand adds to its own catalog (`brand` may be omitted); a fulfillment "
        "partner names one of the brands it fulfils. `price` is exact in `currency`: more "
        "decimal places than the currency has is a 400 (`too_many_decimal_places`).",
        request=ProductCreateSerializer,
        responses={
            201: ProductSerializer,
            **post_errors("duplicate_sku", "invalid_reference", "invalid_currency", *MONEY_400),
        },
        examples=[
            OpenApiExample(
                "By a fulfillment partner",
                # the example product as written: without what the service sets
                value={
                    field: value
                    for field, value in PRODUCT_VALUE.items()
                    if field not in ("id", "created", "updated")
                },
                request_only=True,
            ),
            OpenApiExample(
                "Created", value=PRODUCT_VALUE, response_only=True, status_codes=["201"]
            ),
        ],
    )
    def create(self, request):
        data = validated_input(ProductCreateSerializer, request.data)
        product = services.product_create(
            writer=request.user.partner, brand_id=data.pop("brand", None), **data
        )
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Update a product (price, inventory, ...)",
        tags=["catalog"],
        description="`inventory` sets the units on hand. A new `currency` needs a `price`.",
        request=ProductUpdateSerializer,
        responses={
            200: ProductSerializer,
            **error_responses("duplicate_sku", "invalid_currency", *MONEY_400),
        },
        examples=[
            OpenApiExample("Restock", value={"inventory": 300}, request_only=True),
            OpenApiExample("Updated", value=PRODUCT_VALUE, response_only=True),
        ],
    )
    def partial_update(self, request, pk=None):
        product = self.get_object()
        data = validated_input(ProductUpdateSerializer, request.data)
        product = services.product_update(product=product, **data)
        return Response(ProductSerializer(product).data)
