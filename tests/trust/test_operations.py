"""Operations people can read (issue 18): JSON logs with a request id returned as
``X-Request-Id`` and carried into the Celery tasks a request queues; business metrics in
``/metrics``."""

import json
import logging

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from livecommerce import logs
from tests.orders.helpers import act, place_order

pytestmark = pytest.mark.django_db


def _json_formatter() -> logging.Formatter:
    config = settings.LOGGING["formatters"]["json"]

    return JsonFormatter(config["format"], rename_fields=config["rename_fields"])


class TestRequestIds:
    def test_each_answer_names_its_request(self, host_client, product):
        first = host_client.get("/api/v1/orders")
        second = host_client.get("/api/v1/orders")
        assert len(first["X-Request-Id"]) == 32
        assert first["X-Request-Id"] != second["X-Request-Id"]

    def test_a_callers_request_id_is_kept_and_a_bad_one_replaced(self, host_client):
        kept = host_client.get("/api/v1/orders", HTTP_X_REQUEST_ID="lb-7f3a.2")
        assert kept["X-Request-Id"] == "lb-7f3a.2"
        replaced = host_client.get("/api/v1/orders", HTTP_X_REQUEST_ID="<script>" + "x" * 200)
        assert replaced["X-Request-Id"] != "<script>" and len(replaced["X-Request-Id"]) == 32

    def test_log_lines_are_json_with_the_request_id(self, host_client, product, caplog):
        with caplog.at_level(logging.INFO, logger="livecommerce.request"):
            response = host_client.get("/api/v1/orders", HTTP_X_REQUEST_ID="req-123")
        [record] = [r for r in caplog.records if r.name == "livecommerce.request"]
        line = json.loads(_json_formatter().format(record))
        assert line["request_id"] == response["X-Request-Id"] == "req-123"
        assert (line["status"], line["path"], line["level"]) == (200, "/api/v1/orders", "INFO")
        assert line["logger"] == "livecommerce.request" and "time" in line

    def test_the_request_id_rides_into_the_tasks_a_request_queues(self):
        """The Celery signal handlers: publish puts the id in the message headers, the worker
        sets it around the task (tests/system runs them across processes)."""
        token = logs.request_id_var.set("req-abc")
        headers: dict = {}
        logs._request_id_into_task(headers=headers)
        logs.request_id_var.reset(token)
        assert headers == {"request_id": "req-abc"}

        class Task:
            class request:
                request_id = "req-abc"

        logs._request_id_from_task(task_id="t1", task=Task)
        record = logging.getLogger("x").makeRecord("x", logging.INFO, __file__, 1, "m", (), None)
        assert record.request_id == "req-abc"
        logs._request_id_done(task_id="t1")
        assert logs.request_id_var.get() is None


class TestBusinessMetrics:
    def test_metrics_show_orders_deliveries_settlement_runs_and_findings(
        self, host_client, product, api_client, settings
    ):
        settings.METRICS_TOKEN = "scrape"
        paid = place_order(host_client, product)
        act(host_client, paid["id"], "pay")
        place_order(host_client, product)

        text = api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape").content.decode()

        assert 'livecommerce_orders{status="paid"} 1.0' in text
        assert 'livecommerce_orders{status="pending_payment"} 1.0' in text
        assert 'livecommerce_orders{status="shipped"} 0.0' in text
        assert 'livecommerce_webhook_deliveries{status="succeeded"}' in text
        assert "livecommerce_webhook_delivery_lag_seconds" in text
        assert 'livecommerce_settlement_runs{status="' in text
        assert "livecommerce_reconciliation_findings_total 0.0" in text
