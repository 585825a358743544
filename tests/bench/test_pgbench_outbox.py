"""bench/bench_orders.py deletes the outbox rows its pgbench baseline wrote, so the service's
worker does not send them during the phases measured after it (no benchmark run here)."""

import pytest
from django.utils import timezone

from bench.bench_orders import drop_pgbench_outbox
from partners.webhooks.models import WebhookDelivery
from tests import factories
from tests.webhooks.helpers import make_endpoint, publish


@pytest.mark.django_db(transaction=True)
def test_only_pgbench_deliveries_are_deleted():
    host_app = factories.HostAppFactory()
    endpoint = make_endpoint(host_app, "https://93.184.216.34/x")
    service = WebhookDelivery.objects.get(event=publish(partners=[host_app]))
    now = timezone.now()
    for n, status in enumerate(["pending", "pending", "failed"]):
        WebhookDelivery.objects.create(
            id=f"wd_pgb{n}c",
            event=publish(partners=[]),
            endpoint=endpoint,
            status=status,
            next_attempt_at=now,
            enqueued_at=now,
        )

    assert drop_pgbench_outbox() == 3

    assert list(WebhookDelivery.objects.values_list("pk", "status")) == [(service.pk, "pending")]
    assert drop_pgbench_outbox() == 0
