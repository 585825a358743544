"""Commission plans, the double-entry ledger, settlements."""

from django.db import models
from django.db.models import Exists, OuterRef, Q

from commissions.choices import (
    PARTNER_PURPOSES,
    PLATFORM_PURPOSES,
    AccountPurpose,
    AdjustmentKind,
    EntryKind,
    Share,
)
from livecommerce.ids import ID_MAX_LENGTH, IdFactory
from orders.models import LiveSession, Order, OrderLine, Refund
from partners.models import Partner, TenantQuerySet


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


class CommissionApplication(models.Model):
    """The commission terms applied to one order at payment, kept as they were then.

    ``commission_plan_apply`` writes it (and copies each line's rates onto the order line);
    ``ledger_post_sale`` posts from it. The per-order fixed fulfillment fee is copied here, so a
    plan edited after payment changes nothing about the order. ``line_plans`` maps each order
    line id to the plan whose rates it got (plans are chosen per line: a category plan applies to
    the lines of its category).
    """

    order = models.OneToOneField(
        Order, primary_key=True, on_delete=models.PROTECT, related_name="commission_application"
    )
    plan = models.ForeignKey(CommissionPlan, on_delete=models.PROTECT, related_name="+")
    fulfillment_fee_fixed = models.BigIntegerField(default=0, help_text="Minor units, per order")
    line_plans = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.order_id} <- {self.plan_id}"


class LedgerAccount(models.Model):
    """One account of the chart: a purpose, in one currency, for the platform or one partner.

    Created on first use. Partner purposes name their partner; platform purposes do not.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("acc"))
    purpose = models.CharField(max_length=30, choices=AccountPurpose.choices)
    partner = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    currency = models.CharField(max_length=3)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("purpose", "currency", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["purpose", "partner", "currency"],
                condition=Q(partner__isnull=False),
                name="ledger_account_unique_partner",
            ),
            models.UniqueConstraint(
                fields=["purpose", "currency"],
                condition=Q(partner__isnull=True),
                name="ledger_account_unique_platform",
            ),
            models.CheckConstraint(
                condition=(
                    Q(purpose__in=[p.value for p in PARTNER_PURPOSES], partner__isnull=False)
                    | Q(purpose__in=[p.value for p in PLATFORM_PURPOSES], partner__isnull=True)
                ),
                name="ledger_account_partner_iff_partner_purpose",
            ),
        ]

    def __str__(self) -> str:
        owner = self.partner_id or "platform"
        return f"{self.purpose}:{owner}:{self.currency}"


class LedgerEntryQuerySet(TenantQuerySet):
    def partner_filter(self, partner: Partner) -> Q:
        """A partner reads the entries that touch its own accounts."""
        return Q(Exists(LedgerLine.objects.filter(entry_id=OuterRef("pk"), partner=partner)))


class LedgerEntry(models.Model):
    """One balanced journal entry: a sale, a refund, a release, a settlement, a payout...

    Never updated or deleted (PostgreSQL triggers refuse it): a correction is a new entry.
    ``idempotency_key`` makes each posting happen once, however often a task is retried.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("je"))
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    refund = models.ForeignKey(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    reference = models.CharField(
        max_length=100,
        blank=True,
        db_index=True,
        help_text="The object that caused the entry when it is not an order (a settlement id)",
    )
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=255, unique=True)
    memo = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        ordering = ("-created", "-id")
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["kind", "-created"], name="ledger_entry_kind_created")]

    def __str__(self) -> str:
        return f"{self.id} {self.kind}"


class LedgerLineQuerySet(TenantQuerySet):
    def partner_filter(self, partner: Partner) -> Q:
        """A partner reads the lines of its own accounts only (the other parties' shares stay
        private, so a partner's view of an entry does not balance on its own)."""
        return Q(partner=partner)


class LedgerLine(models.Model):
    """A debit or a credit of one account within an entry, in the entry's currency.

    Amounts are minor units; exactly one of ``debit`` and ``credit`` is non-zero. The order's
    parties, the order line and the ``share`` are copied onto each line so that balances and
    reports aggregate in SQL over this one table.
    """

    id = models.BigAutoField(primary_key=True)
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="lines")
    # Denormalised from the account and the entry.
    partner = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    purpose = models.CharField(max_length=30, choices=AccountPurpose.choices)
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    created = models.DateTimeField(db_index=True)
    debit = models.BigIntegerField(default=0)
    credit = models.BigIntegerField(default=0)
    share = models.CharField(max_length=30, choices=Share.choices, blank=True)
    # Denormalised from the order (null for entries without one).
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    order_line = models.ForeignKey(
        OrderLine, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    host_app = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    brand = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    creator = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    fulfillment_partner = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    live_session = models.ForeignKey(
        LiveSession,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )

    objects = LedgerLineQuerySet.as_manager()

    class Meta:
        ordering = ("entry", "id")
        indexes = [
            models.Index(fields=["account", "created"], name="ledger_line_account_created"),
            models.Index(fields=["partner", "currency", "purpose"], name="ledger_line_partner"),
            models.Index(fields=["currency", "created"], name="ledger_line_currency_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(debit__gt=0) & Q(credit=0)) | (Q(debit=0) & Q(credit__gt=0)),
                name="ledger_line_one_side_positive",
            ),
        ]

    def __str__(self) -> str:
        side = f"Dr {self.debit}" if self.debit else f"Cr {self.credit}"
        return f"{self.entry_id} {self.account_id} {side}"


class AdjustmentQuerySet(models.QuerySet):
    pass


class Adjustment(models.Model):
    """Finance's correction of a payee's balance: a write-off, a repayment or a goodwill credit.

    Each posts one balanced ledger entry (kind ``adjustment``): a credit of the payee's
    ``partner_available`` and a debit of the platform account of its kind
    (``ADJUSTMENT_ACCOUNTS``). Written once with its entry and an audit entry carrying the
    reason; never edited (a mistake is corrected by another adjustment).
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("adj"))
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="adjustments")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Minor units, > 0; credited to the payee")
    kind = models.CharField(max_length=20, choices=AdjustmentKind.choices)
    reason = models.CharField(max_length=500)
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="adjustment")
    created_by = models.CharField(max_length=100, help_text="Who made it (staff:finance)")
    api_key = models.CharField(max_length=ID_MAX_LENGTH, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AdjustmentQuerySet.as_manager()

    class Meta:
        ordering = ("-created", "-id")
        indexes = [
            models.Index(fields=["partner", "currency", "-created"], name="adjustment_partner")
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="adjustment_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in AdjustmentKind]),
                name="adjustment_kind_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.kind} {self.partner_id} {self.currency}"


# The settlement models live with the rest of settlements; importing them here is what registers
# them with Django under this app (label ``commissions``). Imported last: they refer to the
# models above.
from commissions.settlements.models import (  # noqa: E402
    Settlement,
    SettlementRun,
    SettlementRunStatus,
    SettlementRunTrigger,
    SettlementStatus,
)

__all__ = [
    "Adjustment",
    "AdjustmentQuerySet",
    "CommissionApplication",
    "CommissionPlan",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerEntryQuerySet",
    "LedgerLine",
    "LedgerLineQuerySet",
    "Settlement",
    "SettlementRun",
    "SettlementRunStatus",
    "SettlementRunTrigger",
    "SettlementStatus",
]
