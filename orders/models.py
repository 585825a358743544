"""Catalog, live sessions, orders and their history.

Amounts are integers in the currency's minor units (cents for USD, yen for JPY, fils for KWD);
``livecommerce.money`` is the one place that converts them to and from the API's decimal strings.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from livecommerce.ids import ID_MAX_LENGTH, IdFactory
from orders.choices import LiveSessionStatus, OrderStatus
from partners.choices import BrandAccess, PartnerKind
from partners.models import Enrollment, Partner, TenantQuerySet


class ProductQuerySet(TenantQuerySet):
    def partner_filter(self, partner: Partner) -> Q:
        # The brand itself, the brand's fulfillment partner, and any host app that may sell the
        # brand (open host apps: every brand; invite-only: enrolled brands). Creators: nothing.
        if partner.kind == PartnerKind.HOST_APP:
            if partner.brand_access == BrandAccess.INVITE_ONLY:
                enrolled = Enrollment.objects.filter(host_app=partner).values("brand_id")
                return Q(brand__in=enrolled)
            return Q()
        if partner.kind == PartnerKind.FULFILLMENT:
            return Q(brand__fulfillment_partner=partner)
        if partner.kind == PartnerKind.BRAND:
            return Q(brand=partner)
        return Q(pk__in=[])


class Product(models.Model):
    """A brand's product with its price and the inventory its fulfillment partner keeps."""

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("prd"))
    brand = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="products")
    sku = models.CharField(max_length=100)
    title = models.CharField(max_length=300)
    category = models.CharField(max_length=100, blank=True, db_index=True)
    price = models.BigIntegerField(help_text="Minor units of currency")
    currency = models.CharField(max_length=3)
    inventory = models.IntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ("-created",)
        constraints = [
            models.UniqueConstraint(fields=["brand", "sku"], name="product_sku_unique_per_brand"),
            models.CheckConstraint(condition=Q(inventory__gte=0), name="product_inventory_gte_0"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.title}"


class LiveSessionQuerySet(TenantQuerySet):
    def partner_filter(self, partner: Partner) -> Q:
        # The producer, the host apps it is broadcast on, its creator, and the brands (and their
        # fulfillment partners) whose products it shows. Subqueries rather than joins through the
        # many-to-many tables, so a session is never repeated and no DISTINCT is needed.
        broadcast = LiveSession.host_apps.through.objects.filter(partner=partner)
        featured = LiveSession.products.through.objects.filter(
            Q(product__brand=partner) | Q(product__brand__fulfillment_partner=partner)
        )
        return (
            Q(producer=partner)
            | Q(creator=partner)
            | Q(pk__in=broadcast.values("livesession_id"))
            | Q(pk__in=featured.values("livesession_id"))
        )


MIN_HOLD_SECONDS = 1
MAX_HOLD_SECONDS = 7 * 24 * 3600


def default_hold_seconds() -> int:
    """``ORDER_HOLD_SECONDS``: how long an unpaid order holds its units unless its show says."""
    return settings.ORDER_HOLD_SECONDS


class LiveSession(models.Model):
    """A live show hosted by a creator, broadcast on one or more host apps (or a brand's site).

    Orders placed from any of those host apps during the show are attributed to it and its
    creator, which is how the creator earns its commission.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("lvs"))
    producer = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        related_name="produced_sessions",
        help_text="The host app or fulfillment partner that created the session",
    )
    creator = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="hosted_sessions"
    )
    title = models.CharField(max_length=300)
    scheduled_start = models.DateTimeField()
    status = models.CharField(
        max_length=20, choices=LiveSessionStatus.choices, default=LiveSessionStatus.SCHEDULED
    )
    host_apps = models.ManyToManyField(Partner, related_name="broadcast_sessions")
    products = models.ManyToManyField(Product, related_name="live_sessions", blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    hold_seconds = models.PositiveIntegerField(
        default=default_hold_seconds,
        validators=[MinValueValidator(MIN_HOLD_SECONDS), MaxValueValidator(MAX_HOLD_SECONDS)],
        help_text="How long an unpaid order of this show holds its units (ORDER_HOLD_SECONDS)",
    )
    live_prices = models.JSONField(
        default=dict,
        blank=True,
        help_text="Product id -> price in minor units, paid by orders of the show while it is live",
    )
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    objects = LiveSessionQuerySet.as_manager()

    class Meta:
        ordering = ("-created",)

    def __str__(self) -> str:
        return self.title


class OrderQuerySet(TenantQuerySet):
    def partner_filter(self, partner: Partner) -> Q:
        return (
            Q(host_app=partner)
            | Q(brand=partner)
            | Q(fulfillment_partner=partner)
            | Q(creator=partner)
        )


class Order(models.Model):
    """A buyer's purchase of one brand's products in one currency, placed through a host app.

    ``fulfillment_partner`` is the brand's fulfiller when the order was placed, kept so that
    a later change of fulfiller does not move existing orders.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("ord"))
    status = models.CharField(
        max_length=20,
        choices=OrderStatus.choices,
        default=OrderStatus.PENDING_PAYMENT,
        db_index=True,
    )
    host_app = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="host_orders")
    brand = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="brand_orders")
    fulfillment_partner = models.ForeignKey(
        Partner, null=True, on_delete=models.PROTECT, related_name="fulfilled_orders"
    )
    live_session = models.ForeignKey(
        LiveSession, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    creator = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="creator_orders"
    )
    currency = models.CharField(max_length=3)
    subtotal = models.BigIntegerField(default=0)
    shipping_amount = models.BigIntegerField(default=0)
    tax_amount = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)
    refunded_shipping_amount = models.BigIntegerField(
        default=0, help_text="The part of refunded_amount that returned shipping"
    )
    refunded_tax_amount = models.BigIntegerField(
        default=0, help_text="The part of refunded_amount that returned tax"
    )
    buyer_reference = models.CharField(max_length=200, blank=True)
    buyer_email = models.EmailField(blank=True)
    shipping_address = models.JSONField(null=True, blank=True)
    payment_reference = models.CharField(max_length=200, blank=True)
    carrier = models.CharField(max_length=100, blank=True)
    tracking_number = models.CharField(max_length=200, blank=True)
    commission_plan_id = models.CharField(max_length=ID_MAX_LENGTH, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="While pending payment: when the order expires and its units go back on sale",
    )

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ("-created",)
        indexes = [
            models.Index(fields=["host_app", "-created"], name="order_host_app_created"),
            models.Index(fields=["brand", "-created"], name="order_brand_created"),
            models.Index(fields=["status", "delivered_at"], name="order_status_delivered"),
            models.Index(
                fields=["expires_at"],
                name="order_pending_expires_at",
                condition=Q(status="pending_payment"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    total=models.F("subtotal")
                    + models.F("shipping_amount")
                    + models.F("tax_amount")
                ),
                name="order_total_is_sum",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("total")),
                name="order_refunds_within_total",
            ),
            models.CheckConstraint(
                condition=Q(refunded_shipping_amount__gte=0)
                & Q(refunded_shipping_amount__lte=models.F("shipping_amount"))
                & Q(refunded_tax_amount__gte=0)
                & Q(refunded_tax_amount__lte=models.F("tax_amount")),
                name="order_shipping_tax_refunds_within_amounts",
            ),
            models.CheckConstraint(
                condition=Q(subtotal__gte=0) & Q(shipping_amount__gte=0) & Q(tax_amount__gte=0),
                name="order_amounts_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return self.id


class OrderLine(models.Model):
    """One product on an order, at the price paid (``unit_price``: the show's live price while
    the show was live, else the catalog's) beside the catalog's at that moment (``list_price``).

    The commission rates in force at payment are copied here, so a later edit of a plan never
    changes what a posted order earned.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("oln"))
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=100)
    title = models.CharField(max_length=300)
    category = models.CharField(max_length=100, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price = models.BigIntegerField()
    list_price = models.BigIntegerField(
        null=True,
        help_text="The catalog price when the order was placed (null: the same as unit_price)",
    )
    subtotal = models.BigIntegerField()
    refunded_quantity = models.PositiveIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)
    restocked_quantity = models.PositiveIntegerField(
        default=0, help_text="Units put back into the product's inventory (refunds, cancel)"
    )
    platform_rate_bps = models.PositiveIntegerField(null=True, blank=True)
    creator_rate_bps = models.PositiveIntegerField(null=True, blank=True)
    fulfillment_rate_bps = models.PositiveIntegerField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("order", "position")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_gte_1"),
            models.CheckConstraint(
                condition=Q(refunded_quantity__lte=models.F("quantity")),
                name="order_line_refunded_quantity_lte_quantity",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("subtotal")),
                name="order_line_refunds_within_subtotal",
            ),
            models.CheckConstraint(
                condition=Q(restocked_quantity__lte=models.F("quantity")),
                name="order_line_restocked_quantity_lte_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}:{self.sku}x{self.quantity}"

    @property
    def catalog_price(self) -> int:
        """``list_price``, or ``unit_price`` for a line written without one (before live prices
        existed, or by code that sells at the catalog price)."""
        return self.unit_price if self.list_price is None else self.list_price


class Refund(models.Model):
    """Money returned to the buyer for an order, by line quantities or as an amount.

    ``amount`` is the whole refund: the merchandise of its ``lines`` plus ``shipping_amount`` and
    ``tax_amount``, the parts of the order's shipping and tax it returns (so the ledger can
    reverse each from the account that received it).
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("rfd"))
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    shipping_amount = models.BigIntegerField(default=0)
    tax_amount = models.BigIntegerField(default=0)
    reason = models.CharField(max_length=500, blank=True)
    restock = models.BooleanField(default=False)
    created_by = models.CharField(max_length=100, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("created",)
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(shipping_amount__gte=0)
                & Q(tax_amount__gte=0)
                & Q(amount__gte=models.F("shipping_amount") + models.F("tax_amount")),
                name="refund_shipping_tax_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return self.id


class RefundLine(models.Model):
    """How much of one order line a refund returns (merchandise only)."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="refund_lines")
    quantity = models.PositiveIntegerField(default=0)
    amount = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="refund_line_amount_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.refund_id}:{self.line_id}"


class OrderEvent(models.Model):
    """One step in an order's history: what happened, who did it, from which status to which."""

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("oev"))
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=50)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    actor = models.CharField(max_length=100, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("created", "id")

    def __str__(self) -> str:
        return f"{self.order_id} {self.type}"


class LiveFeedMessage(models.Model):
    """One message of a live session's feed (``GET /live-sessions/{id}/feed``), kept so that a
    client reconnecting with ``Last-Event-ID`` gets every message it missed.

    ``seq`` counts the session's messages 1, 2, 3, ... with no gap: it is taken under the live
    session's row lock, in the transaction of the change it reports, so a message with a higher
    ``seq`` is never visible before one with a lower ``seq``. Stats are not stored here: they are
    computed from the orders when the feed is read.
    """

    session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="feed")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=50)
    data = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("session", "seq")
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="live_feed_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.seq} {self.type}"
