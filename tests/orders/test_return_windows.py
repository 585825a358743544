"""Completion when the return window closes: the command, the Celery task, one service."""

import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from orders import tasks
from orders.models import Order
from partners.models import Event
from tests.orders.helpers import act, order_in

pytestmark = pytest.mark.django_db


def _run_command(at) -> str:
    out = io.StringIO()
    with time_machine.travel(at, tick=False):
        call_command("close_return_windows", stdout=out)
    return out.getvalue()


def test_the_command_completes_delivered_orders_once_their_window_closed(roles, product):
    delivered = order_in("delivered", roles, product)
    shipped = order_in("shipped", roles, product)
    refunded = order_in("delivered", roles, product)
    act(roles["host_app"], refunded, "refunds", {"amount": "39.98"})
    now = timezone.now()

    before = _run_command(now + timedelta(days=13, hours=23))
    after = _run_command(now + timedelta(days=14, minutes=1))
    again = _run_command(now + timedelta(days=15))

    assert before.strip() == "Completed 0 order(s)."
    assert after.strip() == "Completed 1 order(s)."
    assert again.strip() == "Completed 0 order(s)."
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses == {delivered: "completed", shipped: "shipped", refunded: "refunded"}
    completed = Order.objects.get(pk=delivered)
    assert completed.completed_at >= completed.delivered_at + timedelta(days=14)
    assert Event.objects.filter(object_id=delivered, type="order.completed").count() == 1


@override_settings(RETURN_WINDOW_DAYS=3)
def test_the_window_comes_from_the_settings(roles, product):
    order_id = order_in("delivered", roles, product)

    _run_command(timezone.now() + timedelta(days=3, minutes=1))

    assert Order.objects.get(pk=order_id).status == "completed"


def test_the_periodic_task_runs_the_same_service(roles, product):
    order_id = order_in("delivered", roles, product)

    with time_machine.travel(timezone.now() + timedelta(days=15), tick=False):
        # apply() runs the task here and now; its result is read from the EagerResult itself,
        # not with get(): Celery's "no join inside a task" guard is one process-wide flag that a
        # thread still finishing an earlier test's task may hold.
        result = tasks.close_return_windows.apply()
    assert result.successful(), result.traceback
    completed = result.result

    assert tasks.close_return_windows.name == "orders.tasks.close_return_windows"
    assert completed == 1
    assert Order.objects.get(pk=order_id).status == "completed"
    history = roles["host_app"].get(f"/api/v1/orders/{order_id}/events").json()["results"]
    assert (history[-1]["type"], history[-1]["actor"]) == ("completed", "system")
