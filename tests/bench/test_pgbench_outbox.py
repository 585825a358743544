"""bench/bench_orders.py closes the outbox rows its pgbench baseline wrote, so the service's
worker does not send them during the phases measured after it (no benchmark run here)."""

import pytest
from django.utils import timezone

from bench.bench_orders import close_pgbench_outbox
from partners.webhooks.models import WebhookDelivery
from tests import factories
from tests.webhooks.helpers import make_endpoint, publish


@pytest.mark.django_db(transaction=True)
def test_only_pgbench_pending_deliveries_are_closed():
    host_app = factories.HostAppFactory()
    endpoint = make_endpoint(host_app, "https://93.184.216.34/x")
    service = WebhookDelivery.objects.get(event=publish(partners=[host_app]))
    now = timezone.now()
    pgbench = [
        WebhookDelivery.objects.create(
            id=f"wd_pgb{n}c",
            event=publish(partners=[]),
            endpoint=endpoint,
            next_attempt_at=now,
            enqueued_at=now,
        )
        for n in range(2)
    ]

    assert close_pgbench_outbox() == 2

    for delivery in pgbench:
        delivery.refresh_from_db()
        assert (delivery.status, delivery.next_attempt_at, delivery.enqueued_at) == (
            "succeeded",
            None,
            None,
        )
    service.refresh_from_db()
    assert service.status == "pending"  # the service's own are left to its worker
    assert close_pgbench_outbox() == 0
