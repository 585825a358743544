"""Faults on the real processes: what was lost when the database restarted, the broker hung
and went down, a webhook receiver was away for hours. Each test states it: nothing.

gunicorn, the Celery worker and beat run as in production (``tests/system/stack.py``); the
database and the broker are reached through proxies that a test cuts, since the servers are
shared and must not be stopped. Clients are the partner SDK (``clients.LiveCommerceClient``),
with its idempotency keys and retries, exactly as an integrator uses it. The scenarios live in
``tests/system/scenarios.py``; ``bench/faults.py`` runs them full size.
"""

import pytest

from tests.system import scenarios

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def test_the_database_restarting_mid_traffic_loses_no_order_and_makes_none_twice(
    live_stack, market
):
    # given four host-app checkouts placing and paying orders (resending some POSTs)
    # when, 2 s in, the database "restarts": sessions cut, connections refused for 3 s
    outcome = scenarios.database_restarts(
        live_stack, market, shoppers=4, seconds=9, outages=((2.0, 3.0),)
    )

    # then the clients rode it out: nothing lost, nothing made twice, the ledger balanced
    print(outcome.report())
    assert outcome.lost == []
    [restart] = outcome.observed["restarts"]
    assert restart["sessions_terminated"] >= 1  # the restart really ended live sessions
    causes = {r.status for r in outcome.journal.retries}
    assert causes & {503, None}, outcome.journal.retries[:5]  # the clients saw it
    # and every answer was a success, a 503 with Retry-After (retry soon), or a replay: the
    # service never answered 500 while the database was away (issue 18, finding 7)
    answered_500 = [r for r in outcome.journal.retries if r.status == 500]
    assert answered_500 == [], answered_500[:5]
    unavailable = [r for r in outcome.journal.retries if r.status == 503]
    assert all(r.code == "service_unavailable" for r in unavailable), unavailable[:5]
    assert all(r.retry_after is not None for r in unavailable), unavailable[:5]
    assert not [c for c in outcome.journal.calls if c.status == 500]
    assert outcome.observed["orders placed after the last restart"] > 0
    summary = outcome.journal.summary()
    for kind in ("create", "pay", "resend"):
        assert summary[kind]["failed"] == summary[kind]["refused"] == 0, summary


def test_the_broker_hung_then_down_keeps_every_event_and_delivers_it_after(live_stack, market):
    # given a host app with a webhook endpoint, the worker, and beat sweeping every second
    # (production: 30 s); the webhook settings are production's
    # when the broker hangs for 4 s, then refuses connections for 4 s, while four checkouts
    # keep ordering, and then comes back
    outcome = scenarios.broker_outage(live_stack, market, shoppers=4, hang_s=4, down_s=4)

    # then the web process kept answering: every order placed and paid, the process healthy
    # and not ready while the broker was down
    print(outcome.report())
    summary = outcome.journal.summary()
    assert summary["create"]["failed"] == summary["create"]["refused"] == 0, summary
    assert summary["pay"]["failed"] == summary["pay"]["refused"] == 0, summary
    assert summary["create"]["ok"] >= 8, summary
    seen = outcome.observed
    assert (seen["healthz while down"], seen["readyz while down"]) == (200, 503)
    # and every event was kept in the outbox, none sent during the outage ...
    answered = summary["create"]["ok"] + summary["pay"]["ok"]
    assert seen["events published during the outage"] == answered  # order.created, order.paid
    assert seen["their deliveries kept in the outbox"] == seen["events published during the outage"]
    assert seen["their delivery statuses"] == ["pending"]
    assert seen["of them received during the outage"] == 0
    # ... and all were delivered once the broker was back, by the same (reconnected) worker
    assert outcome.lost == []
    assert seen["worker still running (reconnected)"]


def test_a_receiver_down_for_hours_gets_every_event_when_it_is_back(live_stack, market):
    # given production's retry schedule with an hour lasting half a second
    # when the receiver refuses connections for six "hours" while four orders are placed
    outcome = scenarios.receiver_down_for_hours(
        live_stack, market, hour=0.5, down_hours=6, early_orders=3, later_orders=1
    )

    # then nothing arrived while it was down, and every event arrived after
    print(outcome.report())
    assert outcome.observed["received while down"] == 0
    assert outcome.observed["events owed"] == 8
    assert outcome.lost == []
    # and the attempts are recorded where the partner reads them: refused, then one 200
    deliveries = outcome.details["deliveries"]
    assert len(deliveries) == 8
    for delivery in deliveries:
        attempts = delivery["attempts"]
        assert delivery["status"] == "succeeded"
        assert delivery["attempt_count"] == len(attempts) >= 2
        assert [a["succeeded"] for a in attempts].count(True) == 1
        assert attempts[-1]["status_code"] == 200
        assert {a["error"] for a in attempts[:-1]} == {"connection refused"}
    # the early events were tried again and again over the hours it was down
    assert sum(1 for d in deliveries if d["attempt_count"] >= 5) >= 6
    assert outcome.observed["endpoint status"] == "enabled"
