"""Issue 8's system test: the live-shopping scenario over HTTP on the real processes.

gunicorn, a Celery worker and Celery beat run on PostgreSQL and Redis (``live_stack``). The
simulated host app runs a live session with viewers buying (some cancel, some return items); the
simulated fulfillment partner learns of paid orders by signed webhooks delivered by the worker
and accepts, ships and delivers them; the return windows are closed by the service's own task,
sent to the worker the way beat sends it; finance runs the settlement through the API (a task on
the worker), pays it out and pulls the commission report. The scenario's own checks, and ours
below against the database, must all hold.
"""

import io
from collections import defaultdict

import pytest
from django.db.models import Sum

from clients.simulators.scenario import run_scenario
from commissions.models import LedgerEntry, LedgerLine
from orders.models import Order
from partners.webhooks.choices import WebhookDeliveryStatus
from partners.webhooks.models import WebhookDelivery
from tests.system.stack import BeatSender

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def test_live_shopping_scenario_on_gunicorn_celery_and_beat(live_stack, ops_key, finance_key):
    # given a worker whose return window is zero days, and beat sweeping webhook deliveries
    live_stack.restart_worker(env={"RETURN_WINDOW_DAYS": "0"})
    live_stack.start_beat()
    # when the scenario runs over HTTP against gunicorn (the return windows closed by the
    # periodic task, sent by name to its queue as beat sends it)
    out = io.StringIO()
    with BeatSender(live_stack.broker_url) as beat:
        result = run_scenario(
            live_stack.base_url,
            ops_key=ops_key,
            finance_key=finance_key,
            viewers=16,
            threads=4,
            seed=8,
            close_return_windows=lambda: beat.send("orders.tasks.close_return_windows"),
            completion_timeout=60,
            fulfil_timeout=120,
            out=out,
            progress_out=io.StringIO(),
        )

    # then every check the finance step makes passed (ledger balanced, report equals the ledger,
    # each payee's settlement equals what it earned)
    failed = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok]
    assert result.checks, out.getvalue()
    assert not failed, out.getvalue()

    # and the database agrees: every entry balances, and money is where the ledger says
    sums = defaultdict(lambda: [0, 0])
    for row in LedgerLine.objects.values("entry_id").annotate(d=Sum("debit"), c=Sum("credit")):
        sums[row["entry_id"]] = [row["d"], row["c"]]
    assert sums, "the scenario posted nothing"
    assert all(d == c for d, c in sums.values())
    kinds = set(LedgerEntry.objects.values_list("kind", flat=True))
    assert {"sale", "release", "settlement", "payout"} <= kinds, kinds

    # and the fulfillment partner heard of every paid order by a signed webhook the worker sent
    paid_orders = set(Order.objects.exclude(paid_at=None).values_list("id", flat=True))
    delivered = set(
        WebhookDelivery.objects.filter(
            status=WebhookDeliveryStatus.SUCCEEDED,
            event__type="order.paid",
            endpoint__partner__kind="fulfillment",
        ).values_list("event__object_id", flat=True)
    )
    assert paid_orders and paid_orders <= delivered
