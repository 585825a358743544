"""The Celery application ``livecommerce``.

Queues: ``default``, ``webhooks`` (deliveries) and ``settlements`` (settlement runs). One worker
started with ``celery -A livecommerce worker -Q default,webhooks,settlements`` runs every task;
beat (``celery -A livecommerce beat``) runs the periodic ones below. Without a broker
(``CELERY_BROKER_URL`` unset) tasks run in-process.
"""

import os

from celery import Celery, signals
from celery.schedules import crontab
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livecommerce.settings")

app = Celery("livecommerce")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("webhooks"), Queue("settlements"))
app.autodiscover_tasks()
app.autodiscover_tasks(["partners.webhooks"])  # partners/webhooks/tasks.py

# A worker process keeps its database connection from task to task. Celery's Django fixup would
# otherwise close it before and after every task, so each webhook send opened a new PostgreSQL
# connection (a third of a send's time in bench/bench_webhooks.py). Django's own rule decides
# instead, as at the end of a web request: CONN_MAX_AGE, or a connection an error left unusable.
app.conf.CELERY_DB_REUSE_MAX = 1000


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(sender=None, **kwargs) -> None:
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # in the caller's process and maybe its transaction, like the fixup
    from django.db import close_old_connections

    close_old_connections()


# Task names are strings so that this module imports no app.
app.conf.beat_schedule = {
    "expire-orders": {
        "task": "orders.tasks.expire_orders",
        # at least every 10 s: an abandoned checkout must not hold a drop's units for long
        "schedule": float(os.environ.get("ORDER_EXPIRY_INTERVAL", "5")),
    },
    "close-return-windows": {
        "task": "orders.tasks.close_return_windows",
        "schedule": crontab(minute="*/15"),
    },
    "sweep-webhook-deliveries": {
        "task": "partners.tasks.sweep_webhook_deliveries",
        "schedule": 30.0,
    },
    "run-scheduled-settlements": {
        "task": "commissions.tasks.settlement_run_scheduled",
        "schedule": crontab(hour=2, minute=0),
    },
    "purge-idempotency-records": {
        "task": "livecommerce.tasks.purge_idempotency_records",
        "schedule": crontab(minute=7),
    },
    "reconcile-ledger": {
        "task": "commissions.tasks.reconcile_ledger",
        "schedule": crontab(hour=3, minute=0),
    },
}
