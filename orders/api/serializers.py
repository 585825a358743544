"""Shapes of the catalog, live session and order API.

Input serializers check shape only (types, lengths, required fields); what the values mean
(who may name which brand, prices in which currency, inventory, statuses) is the services' job.
Amounts cross the wire as decimal strings and are converted only by ``livecommerce.money``.
"""

from django.core.validators import MinValueValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from livecommerce.json_input import FreeFormJSONField
from livecommerce.wire import AMOUNT_SCHEMA, EARLIEST_TIME, AmountField
from orders.choices import LiveSessionStatus, OrderStatus
from orders.models import (
    MAX_HOLD_SECONDS,
    MIN_HOLD_SECONDS,
    LiveSession,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    Refund,
    RefundLine,
)
from orders.payloads import live_prices_payload, live_session_payload
from partners.least_data import view_for

MAX_QUANTITY = 10_000
MAX_INVENTORY = 2_147_483_647  # PostgreSQL integer


@extend_schema_field(AMOUNT_SCHEMA)
class AmountInputField(serializers.CharField):
    """Input: an amount as a decimal string. JSON numbers are refused: a float cannot carry an
    exact amount, so "19.99" must be sent as a string. The service parses it in its currency."""

    default_error_messages = {"not_a_string": 'Amounts are decimal strings, e.g. "19.99".'}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


# --- Catalog ---------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "The brand's id"},
            {
                "type": "object",
                "description": "The brand, with `?expand=brand`",
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                "required": ["id", "name"],
                "additionalProperties": False,
            },
        ]
    }
)
class ExpandableBrandField(serializers.Field):
    """The brand's id, or ``{"id", "name"}`` when the request asks ``?expand=brand``."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, product: Product):
        if "brand" in self.context.get("expand", ()):
            return {"id": product.brand_id, "name": product.brand.name}
        return product.brand_id


class ProductSerializer(serializers.ModelSerializer):
    """A product as the API shows it."""

    price = AmountField()
    brand = ExpandableBrandField()

    class Meta:
        model = Product
        fields = [
            "id",
            "brand",
            "sku",
            "title",
            "category",
            "price",
            "currency",
            "inventory",
            "created",
            "updated",
        ]
        read_only_fields = fields


class ProductCreateSerializer(serializers.Serializer):
    brand = serializers.CharField(
        required=False,
        max_length=40,
        help_text="The brand's id. A fulfillment partner must name it; a brand may omit it.",
    )
    sku = serializers.CharField(max_length=100)
    title = serializers.CharField(max_length=300)
    category = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    price = AmountInputField()
    currency = serializers.CharField(min_length=3, max_length=3, help_text="ISO 4217, upper case")
    inventory = serializers.IntegerField(min_value=0, max_value=MAX_INVENTORY, default=0)


class ProductUpdateSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=100, required=False)
    title = serializers.CharField(max_length=300, required=False)
    category = serializers.CharField(max_length=100, required=False, allow_blank=True)
    price = AmountInputField(required=False)
    currency = serializers.CharField(
        min_length=3,
        max_length=3,
        required=False,
        help_text="Changing the currency needs a price in the new currency in the same request.",
    )
    inventory = serializers.IntegerField(min_value=0, max_value=MAX_INVENTORY, required=False)


# --- Live sessions ---------------------------------------------------------------------------


LIVE_PRICES_SCHEMA = {
    "type": "object",
    "additionalProperties": AMOUNT_SCHEMA,
    "description": "Product id -> the price an order of this show pays while the show is "
    "`live`, in the product's currency (before and after the show: the catalog price).",
    "example": {"prd_01jd3x6q2c7h9k4m8n2p5r7t9v": "14.99"},
}


@extend_schema_field(LIVE_PRICES_SCHEMA)
class LivePricesField(serializers.Field):
    """Output of a show's live prices: product id -> decimal string in the product's currency."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return live_prices_payload(value)


@extend_schema_field(LIVE_PRICES_SCHEMA)
class LivePricesInputField(serializers.DictField):
    """Input: product id -> decimal string; the service checks each in its product's currency."""

    def __init__(self, **kwargs):
        kwargs.setdefault("child", AmountInputField())
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > 200:
            raise serializers.ValidationError("At most 200 live prices.", code="max_length")
        for key in value:
            if len(key) > 40:
                raise serializers.ValidationError("Not a product id.", code="invalid")
        return value


class LiveSessionSerializer(serializers.ModelSerializer):
    """A live show, where it is broadcast and what it sells."""

    status = serializers.ChoiceField(choices=LiveSessionStatus.choices, read_only=True)
    products = serializers.SerializerMethodField()
    host_apps = serializers.SerializerMethodField()
    live_prices = LivePricesField()

    class Meta:
        model = LiveSession
        fields = [
            "id",
            "producer",
            "creator",
            "title",
            "scheduled_start",
            "status",
            "products",
            "host_apps",
            "started_at",
            "ended_at",
            "hold_seconds",
            "live_prices",
            "created",
            "updated",
        ]
        read_only_fields = fields

    def get_products(self, obj: LiveSession) -> list[str]:
        return sorted(p.pk for p in obj.products.all())

    def get_host_apps(self, obj: LiveSession) -> list[str]:
        return sorted(p.pk for p in obj.host_apps.all())

    def to_representation(self, instance: LiveSession) -> dict:
        # The fields above document the shape; the one builder makes it (events carry it too).
        return live_session_payload(instance)


class LiveSessionCreateSerializer(serializers.Serializer):
    creator = serializers.CharField(
        required=False, allow_null=True, max_length=40, help_text="The creator hosting the show"
    )
    title = serializers.CharField(max_length=300)
    scheduled_start = serializers.DateTimeField(validators=[MinValueValidator(EARLIEST_TIME)])
    products = serializers.ListField(
        child=serializers.CharField(max_length=40), max_length=200, required=False, default=list
    )
    host_apps = serializers.ListField(
        child=serializers.CharField(max_length=40),
        min_length=1,
        max_length=50,
        required=False,
        help_text="Where the show is broadcast. A host app producer broadcasts on itself only "
        "(the default); a fulfillment partner must name at least one host app.",
    )
    hold_seconds = serializers.IntegerField(
        required=False,
        min_value=MIN_HOLD_SECONDS,
        max_value=MAX_HOLD_SECONDS,
        help_text="How long an unpaid order of this show holds its units before it expires "
        "(default: the service's ORDER_HOLD_SECONDS, 900).",
    )
    live_prices = LivePricesInputField(required=False)


class LiveSessionUpdateSerializer(serializers.Serializer):
    live_prices = LivePricesInputField(
        required=False, help_text="Replaces every live price of the show (`{}` removes them)."
    )
    hold_seconds = serializers.IntegerField(
        required=False,
        min_value=MIN_HOLD_SECONDS,
        max_value=MAX_HOLD_SECONDS,
        help_text="For orders placed from now on.",
    )


# --- Orders ----------------------------------------------------------------------------------


class OrderLineSerializer(serializers.ModelSerializer):
    unit_price = AmountField(
        currency_path="order.currency",
        help_text="What one unit was sold at: the show's live price, or the catalog price.",
    )
    list_price = AmountField(
        source="catalog_price",
        currency_path="order.currency",
        help_text="The catalog price when the order was placed.",
    )
    subtotal = AmountField(currency_path="order.currency")
    refunded_amount = AmountField(currency_path="order.currency")

    class Meta:
        model = OrderLine
        fields = [
            "id",
            "product",
            "sku",
            "title",
            "quantity",
            "unit_price",
            "list_price",
            "subtotal",
            "refunded_quantity",
            "refunded_amount",
        ]
        read_only_fields = fields


class BuyerSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)


class OrderSerializer(serializers.ModelSerializer):
    """An order in the contract's shape, plus who fulfils it, the buyer and status times."""

    status = serializers.ChoiceField(choices=OrderStatus.choices, read_only=True)
    subtotal = AmountField()
    shipping_amount = AmountField()
    tax_amount = AmountField()
    total = AmountField()
    refunded_amount = AmountField()
    buyer = serializers.SerializerMethodField()
    payment_reference = serializers.CharField(
        read_only=True, allow_null=True, help_text="null for a creator (least data)"
    )
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "host_app",
            "brand",
            "fulfillment_partner",
            "live_session",
            "creator",
            "currency",
            "subtotal",
            "shipping_amount",
            "tax_amount",
            "total",
            "refunded_amount",
            "buyer",
            "shipping_address",
            "payment_reference",
            "carrier",
            "tracking_number",
            "created",
            "updated",
            "paid_at",
            "accepted_at",
            "shipped_at",
            "delivered_at",
            "completed_at",
            "canceled_at",
            "expires_at",
            "lines",
        ]
        extra_kwargs = {
            "expires_at": {
                "help_text": "When an unpaid order's hold ends: not paid by then, it moves to "
                "`expired` and its units go back on sale (`pay` answers 409 `order_expired`). "
                "Kept as it was once the order is paid, canceled or expired."
            }
        }
        read_only_fields = fields

    @extend_schema_field(BuyerSerializer(allow_null=True, help_text="null for a creator"))
    def get_buyer(self, obj: Order) -> dict:
        return {"reference": obj.buyer_reference, "email": obj.buyer_email}

    def to_representation(self, instance):
        # What a caller may read of an order depends on its kind (partners/least_data.py).
        return _for_caller(self, super().to_representation(instance))


def _for_caller(serializer, data):
    request = serializer.context.get("request")
    return view_for(request.user, data) if request is not None else data


class OrderLineInputSerializer(serializers.Serializer):
    product = serializers.CharField(max_length=40)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class OrderCreateSerializer(serializers.Serializer):
    lines = OrderLineInputSerializer(many=True, allow_empty=False, max_length=100)
    live_session = serializers.CharField(required=False, allow_null=True, max_length=40)
    buyer = BuyerSerializer(required=False)
    shipping_address = FreeFormJSONField(required=False, allow_null=True)
    shipping_amount = AmountInputField(required=False, default="0")
    tax_amount = AmountInputField(required=False, default="0")


class OrderPaySerializer(serializers.Serializer):
    amount = AmountInputField(help_text="Must equal the order's total.")
    payment_reference = serializers.CharField(max_length=200)


class OrderCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class OrderShipSerializer(serializers.Serializer):
    carrier = serializers.CharField(max_length=100)
    tracking_number = serializers.CharField(max_length=200)


# --- Refunds and history ---------------------------------------------------------------------


class RefundLineSerializer(serializers.ModelSerializer):
    amount = AmountField(currency_path="refund.order.currency")

    class Meta:
        model = RefundLine
        fields = ["line", "quantity", "amount"]
        read_only_fields = fields


class RefundSerializer(serializers.ModelSerializer):
    """A refund: its total, the shipping and tax it returns, and each line's merchandise."""

    currency = serializers.CharField(source="order.currency", read_only=True)
    amount = AmountField(currency_path="order.currency")
    shipping_amount = AmountField(currency_path="order.currency")
    tax_amount = AmountField(currency_path="order.currency")
    lines = RefundLineSerializer(many=True, read_only=True)

    class Meta:
        model = Refund
        fields = [
            "id",
            "order",
            "currency",
            "amount",
            "shipping_amount",
            "tax_amount",
            "reason",
            "restock",
            "lines",
            "created_by",
            "created",
        ]
        read_only_fields = fields


class RefundLineInputSerializer(serializers.Serializer):
    line = serializers.CharField(max_length=40, help_text="An order line id (`oln_…`)")
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class RefundCreateSerializer(serializers.Serializer):
    lines = RefundLineInputSerializer(many=True, required=False, allow_empty=False, max_length=100)
    amount = AmountInputField(required=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    restock = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Put the refunded quantities back into inventory (line refunds only).",
    )

    def validate(self, attrs):
        if ("lines" in attrs) == ("amount" in attrs):
            # A domain code of its own: the schema cannot say "one of" in a way generated
            # clients keep, so clients recognise the rule by its code.
            raise serializers.ValidationError(
                "Send exactly one of `lines` and `amount`.", code="lines_or_amount"
            )
        if attrs.get("restock") and "amount" in attrs:
            raise serializers.ValidationError(
                {"restock": "restock applies to line refunds; an amount returns no units."},
                code="invalid",
            )
        return attrs


class OrderEventSerializer(serializers.ModelSerializer):
    """One step of an order's history."""

    class Meta:
        model = OrderEvent
        fields = ["id", "type", "from_status", "to_status", "actor", "data", "created"]
        read_only_fields = fields

    def to_representation(self, instance):
        return _for_caller(self, super().to_representation(instance))
