"""Live drops: holds that expire, live prices, the live feed's message log.

Existing order lines keep their price as their list price; existing unpaid orders get the
default hold from now on (ORDER_HOLD_SECONDS after this migration), so none expires at once.
"""

from datetime import timedelta

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

import orders.models


def backfill(apps, schema_editor):
    from django.conf import settings
    from django.db.models import F
    from django.utils import timezone

    OrderLine = apps.get_model("orders", "OrderLine")
    Order = apps.get_model("orders", "Order")
    OrderLine.objects.filter(list_price=None).update(list_price=F("unit_price"))
    Order.objects.filter(status="pending_payment", expires_at=None).update(
        expires_at=timezone.now() + timedelta(seconds=settings.ORDER_HOLD_SECONDS)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_refund_parts_restock"),
        ("partners", "0003_partner_minimum_payout"),
    ]

    operations = [
        migrations.CreateModel(
            name="LiveFeedMessage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("seq", models.PositiveIntegerField()),
                ("type", models.CharField(max_length=50)),
                ("data", models.JSONField(default=dict)),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ("session", "seq"),
            },
        ),
        migrations.AddField(
            model_name="livesession",
            name="hold_seconds",
            field=models.PositiveIntegerField(
                default=orders.models.default_hold_seconds,
                help_text="How long an unpaid order of this show holds its units (ORDER_HOLD_SECONDS)",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(604800),
                ],
            ),
        ),
        migrations.AddField(
            model_name="livesession",
            name="live_prices",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Product id -> price in minor units, paid by orders of the show while it is live",
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="expires_at",
            field=models.DateTimeField(
                blank=True,
                help_text="While pending payment: when the order expires and its units go back on sale",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="orderline",
            name="list_price",
            field=models.BigIntegerField(
                help_text="The catalog price when the order was placed (null: the same as unit_price)",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="order",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending_payment", "Pending payment"),
                    ("paid", "Paid"),
                    ("accepted", "Accepted"),
                    ("shipped", "Shipped"),
                    ("delivered", "Delivered"),
                    ("completed", "Completed"),
                    ("canceled", "Canceled"),
                    ("refunded", "Refunded"),
                    (
                        "expired",
                        "Expired (not paid before expires_at; its units went back on sale)",
                    ),
                ],
                db_index=True,
                default="pending_payment",
                max_length=20,
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("status", "pending_payment")),
                fields=["expires_at"],
                name="order_pending_expires_at",
            ),
        ),
        migrations.AddField(
            model_name="livefeedmessage",
            name="session",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="feed",
                to="orders.livesession",
            ),
        ),
        migrations.AddConstraint(
            model_name="livefeedmessage",
            constraint=models.UniqueConstraint(
                fields=("session", "seq"), name="live_feed_seq_unique"
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
