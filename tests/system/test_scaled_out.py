"""Scaled out (issue 18): two gunicorn instances behind one address, two Celery workers, on
Redis and on RabbitMQ. The live-shopping scenario and its settlement run go through them; no
event is delivered twice beyond at-least-once retries, and no settlement is made twice.

The "load balancer" is a small round-robin TCP proxy in this module: each new connection goes
to the next gunicorn. RabbitMQ runs on 127.0.0.1:5672 (guest/guest; ``scripts/test.sh`` starts
it when it is installed); the test is skipped where it is not reachable.
"""

import contextlib
import io
import itertools
import json
import socket
import threading
import uuid
from collections import Counter

import pytest
import requests
from django.db import connection
from django.db.models import Count
from kombu import Connection

from clients.simulators.scenario import run_scenario
from commissions.models import LedgerEntry
from commissions.settlements.models import Settlement, SettlementRun
from partners.webhooks.choices import WebhookDeliveryStatus
from partners.webhooks.models import WebhookAttempt, WebhookDelivery
from tests.system.stack import QUEUES, BeatSender, LiveStack

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


class RoundRobinProxy:
    """One address in front of several upstream ports; each connection to the next one."""

    def __init__(self, upstreams: list[int]) -> None:
        self.upstreams = upstreams
        self.served: Counter[int] = Counter()
        self._next = itertools.cycle(upstreams)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            port = next(self._next)
            self.served[port] += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()


def _request_ids(processes, wanted) -> set[str]:
    """The ``request_id`` of every JSON log line of ``processes`` that ``wanted`` picks."""
    found = set()
    for process in processes:
        for text in process.log_dir.glob(f"{process.name}-*.log"):
            for raw in text.read_text(errors="replace").splitlines():
                if not raw.startswith("{"):
                    continue
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if line.get("request_id") and wanted(line):
                    found.add(line["request_id"])
    return found


def _rabbitmq_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


def _purge_rabbitmq() -> None:
    with Connection(RABBITMQ_URL, connect_timeout=3) as conn:
        channel = conn.channel()
        for queue in QUEUES:
            try:
                channel.queue_purge(queue)
            except Exception:
                channel = conn.channel()


@pytest.fixture(params=["redis", "rabbitmq"])
def scaled_stack(request, transactional_db, tmp_path):
    broker = request.param
    if connection.vendor != "postgresql":
        pytest.skip("system tests run on PostgreSQL (set DATABASE_URL)")
    env = {"RETURN_WINDOW_DAYS": "0"}
    if broker == "rabbitmq":
        if not _rabbitmq_reachable():
            pytest.skip("RabbitMQ is not running on 127.0.0.1:5672")
        _purge_rabbitmq()
        env["CELERY_BROKER_URL"] = RABBITMQ_URL
    stack = LiveStack(
        database=dict(connection.settings_dict),
        log_dir=tmp_path,
        env=env,
        web_workers=1,
        worker_concurrency=1,
    )
    webs, workers, proxy = [], [], None
    try:
        stack.start()  # one gunicorn and one worker ...
        webs.append(stack.web)
        workers.append(stack.worker)
        first_url = stack.base_url
        stack.start_web()  # ... and a second of each
        webs.append(stack.web)
        stack.start_worker()
        workers.append(stack.worker)
        ports = [int(url.rsplit(":", 1)[1]) for url in (first_url, stack.base_url)]
        proxy = RoundRobinProxy(ports)
        stack.base_url = f"http://127.0.0.1:{proxy.port}"
        stack.start_beat()
        broker_url = env.get("CELERY_BROKER_URL", stack.broker_url)
        yield stack, webs, workers, proxy, broker_url
    finally:
        stack.stop_beat()
        for process in (*workers, *webs):
            if process is not None:
                process.stop()
        if proxy is not None:
            proxy.close()
        stack.stop()
        if broker == "rabbitmq":
            _purge_rabbitmq()


def test_two_web_instances_and_two_workers_sell_deliver_and_settle_once(
    scaled_stack, ops_key, finance_key
):
    stack, webs, workers, proxy, broker_url = scaled_stack
    # when the live-shopping scenario, with its settlement run, goes through the one address
    out = io.StringIO()
    with BeatSender(broker_url) as beat:
        result = run_scenario(
            stack.base_url,
            ops_key=ops_key,
            finance_key=finance_key,
            viewers=10,
            threads=4,
            seed=18,
            close_return_windows=lambda: beat.send("orders.tasks.close_return_windows"),
            completion_timeout=60,
            fulfil_timeout=90,
            out=out,
            progress_out=io.StringIO(),
        )

    # then the scenario's own checks hold (ledger balanced, report = ledger, settlements)
    failed = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok]
    assert result.checks and not failed, out.getvalue()
    # and both web instances served, and both workers were running
    assert all(proxy.served[port] > 0 for port in proxy.upstreams), proxy.served
    assert all(p.running for p in (*webs, *workers))

    # and the request id of a request that published an event is in the log line the worker
    # wrote when it sent the event's webhook (JSON logs, id carried in the task's headers)
    web_ids = _request_ids(webs, lambda line: line.get("logger") == "livecommerce.request")
    sent_ids = _request_ids(
        workers, lambda line: str(line.get("message", "")).startswith("webhook delivery")
    )
    assert web_ids and sent_ids & web_ids, (len(web_ids), sorted(sent_ids)[:5])

    # no event delivered twice beyond at-least-once: one delivery per event and endpoint, each
    # succeeded once
    per_pair = (
        WebhookDelivery.objects.values("event_id", "endpoint_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not per_pair.exists()
    deliveries = WebhookDelivery.objects.all()
    assert deliveries.exists()
    assert set(deliveries.values_list("status", flat=True)) == {WebhookDeliveryStatus.SUCCEEDED}
    twice = (
        WebhookAttempt.objects.filter(succeeded=True)
        .values("delivery_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not twice.exists(), list(twice[:5])

    # no settlement made twice: one per payee, currency and run, each with its one entry; and
    # asking for the same period again returns the same run and makes nothing new
    runs = list(SettlementRun.objects.all())
    assert runs
    settlements = Settlement.objects.count()
    assert settlements > 0
    per_payee = (
        Settlement.objects.values("run_id", "partner_id", "currency")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not per_payee.exists()
    assert LedgerEntry.objects.filter(kind="settlement").count() == settlements
    for run in runs:
        again = requests.post(
            f"{stack.base_url}/api/v1/settlements/run",
            json={"period_end": run.period_end.isoformat(), "currency": run.currency},
            headers={
                "Authorization": f"Bearer {finance_key}",
                "Idempotency-Key": uuid.uuid4().hex,
            },
            timeout=15,
        )
        assert again.status_code in (200, 202), again.text
        assert again.json()["id"] == run.pk
    stack.wait_quiet(timeout=30)
    assert Settlement.objects.count() == settlements
    assert LedgerEntry.objects.filter(kind="settlement").count() == settlements
