"""Settlement runs and settlements: how what partners earned leaves the platform.

A ``SettlementRun`` settles one currency up to one period end. For each payee it writes one
``Settlement`` that covers a RANGE of the payee's ``partner_available`` ledger lines
(``after_line_id`` exclusive, ``to_line_id`` inclusive) and posts one ledger entry moving the
covered amount from available to in payout. The ledger stays immutable: nothing marks a line
settled; the next settlement of the same account starts after ``to_line_id``. See
``commissions.settlements`` and docs/settlements.md.
"""

from django.db import models
from django.db.models import F, Q

from livecommerce.ids import ID_MAX_LENGTH, IdFactory
from partners.models import Partner, TenantQuerySet


class SettlementRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class SettlementRunTrigger(models.TextChoices):
    """Who asked for a run: the daily schedule settles only the payees that are due."""

    SCHEDULE = "schedule", "The daily schedule (payees whose payout schedule is due)"
    REQUEST = "request", "Finance, through the API (every payee)"


class SettlementStatus(models.TextChoices):
    PENDING = "pending", "Pending (funds in payout)"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed (funds returned to available)"


class SettlementRunQuerySet(TenantQuerySet):
    def partner_filter(self, partner: Partner) -> Q:
        return Q(pk__in=[])  # runs are finance's; a partner reads its settlements


class SettlementRun(models.Model):
    """One settlement run: a currency settled up to the end of ``period_end`` (UTC).

    There is at most one run per (period end, currency, trigger): asking again returns it. The
    run is executed by a Celery task on the ``settlements`` queue; every step can be repeated after
    a crash. ``watermark_line_id`` is fixed the first time the run starts (the highest ledger line
    id once every transaction that was posting had finished), so a re-run sees exactly the
    lines the first attempt saw. ``prepared`` is set in the same transaction that writes the
    run's settlement rows.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("run"))
    period_end = models.DateField()
    currency = models.CharField(max_length=3)
    trigger = models.CharField(
        max_length=10, choices=SettlementRunTrigger.choices, default=SettlementRunTrigger.REQUEST
    )
    status = models.CharField(
        max_length=10, choices=SettlementRunStatus.choices, default=SettlementRunStatus.QUEUED
    )
    watermark_line_id = models.BigIntegerField(null=True, blank=True)
    prepared = models.BooleanField(default=False)
    settlement_count = models.PositiveIntegerField(default=0)
    line_count = models.PositiveIntegerField(default=0)
    net_payout = models.BigIntegerField(default=0, help_text="Minor units, all settlements")
    below_minimum_count = models.PositiveIntegerField(
        default=0, help_text="Payees with a positive balance under their minimum payout"
    )
    non_positive_count = models.PositiveIntegerField(
        default=0, help_text="Payees whose covered balance was zero or negative (carried over)"
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=1000, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    objects = SettlementRunQuerySet.as_manager()

    class Meta:
        ordering = ("-created", "-id")
        constraints = [
            # The schedule's run of a period and finance's are separate runs: a run finance
            # starts by hand never stands in for the schedule's (which settles the weekly and
            # monthly payees due that day).
            models.UniqueConstraint(
                fields=["period_end", "currency", "trigger"],
                name="settlement_run_once_per_period_trigger",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.currency} {self.period_end}"


class SettlementQuerySet(TenantQuerySet):
    def partner_filter(self, partner: Partner) -> Q:
        return Q(partner=partner)


class Settlement(models.Model):
    """What one payee is paid in one currency by one run, and the ledger lines it covers.

    Covered lines: the payee's ``partner_available`` lines with ``after_line_id < id <=
    to_line_id``, except the settlement entries' own debits (kind ``settlement``). Amounts are
    minor units; ``gross - platform_commission - creator_commission - fulfillment_fees - refunds
    + adjustments == net_payout`` (a constraint). ``entry`` is the ledger entry moving
    ``net_payout`` from available to in payout; the row is written first (with the run's other
    settlements, in one statement) and its entry right after, so a settlement without an entry
    is one a crashed run has still to post (the API does not show it yet).
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("stl"))
    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="settlements")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="settlements")
    account = models.ForeignKey(
        "commissions.LedgerAccount", on_delete=models.PROTECT, related_name="settlements"
    )
    currency = models.CharField(max_length=3)
    period_end = models.DateField()
    after_line_id = models.BigIntegerField(help_text="Covers ledger lines after this id ...")
    to_line_id = models.BigIntegerField(help_text="... up to and including this one")
    gross = models.BigIntegerField(default=0)
    platform_commission = models.BigIntegerField(default=0)
    creator_commission = models.BigIntegerField(default=0)
    fulfillment_fees = models.BigIntegerField(default=0)
    refunds = models.BigIntegerField(default=0)
    adjustments = models.BigIntegerField(default=0)
    net_payout = models.BigIntegerField()
    line_count = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=SettlementStatus.choices, default=SettlementStatus.PENDING
    )
    entry = models.OneToOneField(
        "commissions.LedgerEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="settlement",
    )
    payout_entry = models.OneToOneField(
        "commissions.LedgerEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="settlement_payout",
        help_text="mark-paid (in payout -> paid out) or mark-failed (in payout -> available)",
    )
    payout_reference = models.CharField(max_length=200, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    objects = SettlementQuerySet.as_manager()

    class Meta:
        ordering = ("-created", "-id")
        indexes = [
            models.Index(fields=["partner", "currency", "-created"], name="settlement_partner"),
            models.Index(fields=["account", "to_line_id"], name="settlement_account_to_line"),
        ]
        constraints = [
            # A payee is settled once per run, and two settlements of one account never start at
            # the same line: ranges follow each other, so no ledger line is paid twice.
            models.UniqueConstraint(fields=["run", "partner"], name="settlement_once_per_run"),
            models.UniqueConstraint(
                fields=["account", "after_line_id"], name="settlement_range_starts_once"
            ),
            models.CheckConstraint(
                condition=Q(to_line_id__gt=F("after_line_id")), name="settlement_range_not_empty"
            ),
            models.CheckConstraint(condition=Q(net_payout__gt=0), name="settlement_net_gt_0"),
            models.CheckConstraint(
                condition=Q(
                    net_payout=F("gross")
                    - F("platform_commission")
                    - F("creator_commission")
                    - F("fulfillment_fees")
                    - F("refunds")
                    + F("adjustments")
                ),
                name="settlement_figures_add_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.partner_id} {self.currency}"


__all__ = [
    "Settlement",
    "SettlementQuerySet",
    "SettlementRun",
    "SettlementRunQuerySet",
    "SettlementRunStatus",
    "SettlementRunTrigger",
    "SettlementStatus",
]
