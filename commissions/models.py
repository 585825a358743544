"""Commission plans, the double-entry ledger, settlements."""

from django.db import models
from django.db.models import Q

from livecommerce.ids import ID_MAX_LENGTH, IdFactory
from partners.models import Partner


class CommissionPlan(models.Model):
    """How a purchase is split: platform, creator and fulfillment rates, and a fixed fee.

    A plan may be scoped to a host app, a brand, a category and/or a currency; at payment the
    most specific plan in force applies and its rates are copied onto each order line.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("cpl"))
    name = models.CharField(max_length=200)
    platform_rate_bps = models.PositiveIntegerField()
    creator_rate_bps = models.PositiveIntegerField(default=0)
    fulfillment_rate_bps = models.PositiveIntegerField(default=0)
    fulfillment_fee_fixed = models.BigIntegerField(default=0, help_text="Minor units, per order")
    currency = models.CharField(max_length=3, blank=True)
    host_app = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    brand = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    category = models.CharField(max_length=100, blank=True)
    effective_from = models.DateTimeField()
    effective_to = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created",)
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    platform_rate_bps__lte=10000
                    - models.F("creator_rate_bps")
                    - models.F("fulfillment_rate_bps")
                ),
                name="commission_plan_rates_within_100_percent",
            ),
            models.CheckConstraint(
                condition=Q(fulfillment_fee_fixed=0) | ~Q(currency=""),
                name="commission_plan_fixed_fee_names_currency",
            ),
            models.CheckConstraint(
                condition=Q(fulfillment_fee_fixed__gte=0), name="commission_plan_fee_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True)
                | Q(effective_to__gt=models.F("effective_from")),
                name="commission_plan_effective_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name
