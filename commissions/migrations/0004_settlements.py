"""Settlement runs and settlements, and an index the settlement ranges read by.

``ledger_line_account_id`` on (account_id, id): a settlement covers a range of one account's
ledger lines by id, so both finding each range's end and listing its lines are index range scans.
It is created with SQL so that the ledger's model state stays the ledger's.
"""

import django.db.models.deletion
import django.db.models.expressions
from django.db import migrations, models

import livecommerce.ids


class Migration(migrations.Migration):
    dependencies = [
        ("commissions", "0003_ledger_triggers"),
        ("partners", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="SettlementRun",
            fields=[
                (
                    "id",
                    models.CharField(
                        default=livecommerce.ids.IdFactory("run"),
                        max_length=32,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("period_end", models.DateField()),
                ("currency", models.CharField(max_length=3)),
                (
                    "trigger",
                    models.CharField(
                        choices=[
                            (
                                "schedule",
                                "The daily schedule (payees whose payout schedule is due)",
                            ),
                            ("request", "Finance, through the API (every payee)"),
                        ],
                        default="request",
                        max_length=10,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("completed", "Completed"),
                            ("failed", "Failed"),
                        ],
                        default="queued",
                        max_length=10,
                    ),
                ),
                ("watermark_line_id", models.BigIntegerField(blank=True, null=True)),
                ("prepared", models.BooleanField(default=False)),
                ("settlement_count", models.PositiveIntegerField(default=0)),
                ("line_count", models.PositiveIntegerField(default=0)),
                (
                    "net_payout",
                    models.BigIntegerField(default=0, help_text="Minor units, all settlements"),
                ),
                (
                    "below_minimum_count",
                    models.PositiveIntegerField(
                        default=0,
                        help_text="Payees with a positive balance under their minimum payout",
                    ),
                ),
                (
                    "non_positive_count",
                    models.PositiveIntegerField(
                        default=0,
                        help_text="Payees whose covered balance was zero or negative (carried over)",
                    ),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("error", models.CharField(blank=True, max_length=1000)),
                ("created", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("started", models.DateTimeField(blank=True, null=True)),
                ("finished", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ("-created", "-id"),
                "constraints": [
                    models.UniqueConstraint(
                        fields=("period_end", "currency"), name="settlement_run_once_per_period"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Settlement",
            fields=[
                (
                    "id",
                    models.CharField(
                        default=livecommerce.ids.IdFactory("stl"),
                        max_length=32,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("currency", models.CharField(max_length=3)),
                ("period_end", models.DateField()),
                (
                    "after_line_id",
                    models.BigIntegerField(help_text="Covers ledger lines after this id ..."),
                ),
                (
                    "to_line_id",
                    models.BigIntegerField(help_text="... up to and including this one"),
                ),
                ("gross", models.BigIntegerField(default=0)),
                ("platform_commission", models.BigIntegerField(default=0)),
                ("creator_commission", models.BigIntegerField(default=0)),
                ("fulfillment_fees", models.BigIntegerField(default=0)),
                ("refunds", models.BigIntegerField(default=0)),
                ("adjustments", models.BigIntegerField(default=0)),
                ("net_payout", models.BigIntegerField()),
                ("line_count", models.PositiveIntegerField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending (funds in payout)"),
                            ("paid", "Paid"),
                            ("failed", "Failed (funds returned to available)"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("payout_reference", models.CharField(blank=True, max_length=200)),
                ("failure_reason", models.CharField(blank=True, max_length=500)),
                ("created", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated", models.DateTimeField(auto_now=True)),
                ("paid_at", models.DateTimeField(blank=True, null=True)),
                ("failed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="settlements",
                        to="commissions.ledgeraccount",
                    ),
                ),
                (
                    "entry",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="settlement",
                        to="commissions.ledgerentry",
                    ),
                ),
                (
                    "partner",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="settlements",
                        to="partners.partner",
                    ),
                ),
                (
                    "payout_entry",
                    models.OneToOneField(
                        blank=True,
                        help_text="mark-paid (in payout -> paid out) or mark-failed (in payout -> available)",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="settlement_payout",
                        to="commissions.ledgerentry",
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="settlements",
                        to="commissions.settlementrun",
                    ),
                ),
            ],
            options={
                "ordering": ("-created", "-id"),
                "indexes": [
                    models.Index(
                        fields=["partner", "currency", "-created"], name="settlement_partner"
                    ),
                    models.Index(
                        fields=["account", "to_line_id"], name="settlement_account_to_line"
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("run", "partner"), name="settlement_once_per_run"
                    ),
                    models.UniqueConstraint(
                        fields=("account", "after_line_id"), name="settlement_range_starts_once"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("to_line_id__gt", models.F("after_line_id"))),
                        name="settlement_range_not_empty",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("net_payout__gt", 0)), name="settlement_net_gt_0"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            (
                                "net_payout",
                                django.db.models.expressions.CombinedExpression(
                                    django.db.models.expressions.CombinedExpression(
                                        django.db.models.expressions.CombinedExpression(
                                            django.db.models.expressions.CombinedExpression(
                                                django.db.models.expressions.CombinedExpression(
                                                    models.F("gross"),
                                                    "-",
                                                    models.F("platform_commission"),
                                                ),
                                                "-",
                                                models.F("creator_commission"),
                                            ),
                                            "-",
                                            models.F("fulfillment_fees"),
                                        ),
                                        "-",
                                        models.F("refunds"),
                                    ),
                                    "+",
                                    models.F("adjustments"),
                                ),
                            )
                        ),
                        name="settlement_figures_add_up",
                    ),
                ],
            },
        ),
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS ledger_line_account_id "
            "ON commissions_ledgerline (account_id, id)",
            reverse_sql="DROP INDEX IF EXISTS ledger_line_account_id",
        ),
    ]
