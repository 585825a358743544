"""Business metrics in ``/metrics``, beside django-prometheus' HTTP ones.

Read from the database when Prometheus scrapes (a handful of grouped counts), so every web
process reports the same figures and nothing is lost when a process restarts:

- ``livecommerce_orders{status}``: orders by status;
- ``livecommerce_webhook_deliveries{status}``: deliveries by outcome (pending, succeeded,
  failed); ``livecommerce_webhook_delivery_lag_seconds``: how long the oldest due pending
  delivery has been waiting (0 when none is due);
- ``livecommerce_settlement_runs{status}``: settlement runs by status;
- ``livecommerce_reconciliation_findings``: findings published (``reconciliation.mismatch``).

Models are looked up by label, so this plumbing imports no app.
"""

import contextlib
import logging

from django.apps import apps
from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily

logger = logging.getLogger(__name__)


class BusinessCollector:
    def describe(self):
        # Registering asks for the metric names; an empty answer keeps the database out of
        # start-up (the figures are read at scrape time only).
        return []

    def collect(self):
        try:
            yield from self._collect()
        except DatabaseError as exc:  # the database is away: the HTTP metrics still go out
            logger.warning("business metrics unavailable: %s", exc)

    def _collect(self):
        Order = apps.get_model("orders", "Order")
        WebhookDelivery = apps.get_model("partners", "WebhookDelivery")
        SettlementRun = apps.get_model("commissions", "SettlementRun")
        Event = apps.get_model("partners", "Event")

        yield self._by_status("livecommerce_orders", "Orders by status.", Order)
        yield self._by_status(
            "livecommerce_webhook_deliveries", "Webhook deliveries by outcome.", WebhookDelivery
        )
        now = timezone.now()
        oldest = WebhookDelivery.objects.filter(
            status="pending", next_attempt_at__lte=now
        ).aggregate(oldest=Min("next_attempt_at"))["oldest"]
        lag = GaugeMetricFamily(
            "livecommerce_webhook_delivery_lag_seconds",
            "Seconds the oldest due pending webhook delivery has waited.",
        )
        lag.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        yield lag
        yield self._by_status(
            "livecommerce_settlement_runs", "Settlement runs by status.", SettlementRun
        )
        findings = CounterMetricFamily(
            "livecommerce_reconciliation_findings",
            "Reconciliation findings published (reconciliation.mismatch events).",
        )
        findings.add_metric([], Event.objects.filter(type="reconciliation.mismatch").count())
        yield findings

    @staticmethod
    def _by_status(name: str, documentation: str, model) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, documentation, labels=["status"])
        counts = dict(
            model.objects.order_by()
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        for status in model._meta.get_field("status").choices or []:
            counts.setdefault(status[0], 0)
        for status, count in sorted(counts.items()):
            family.add_metric([status], count)
        return family


_collector = BusinessCollector()


def register() -> None:
    with contextlib.suppress(ValueError):  # already registered (ready() ran twice)
        REGISTRY.register(_collector)
