"""Celery beat for the system tests: the service's own Celery app with a faster sweeper.

``celery -A tests.system.beat_app beat`` sends the same task, by the same name and to the same
queue, as production's beat (``livecommerce.celery``); only the period changes, from 30 s to
``SYSTEM_SWEEP_INTERVAL`` seconds (1 by default), so a test does not wait half a minute per
sweep. The expiry of unpaid orders runs as in production, every ``ORDER_EXPIRY_INTERVAL``
seconds (the stack passes 1). The other periodic tasks (daily settlements, return windows,
purges) are left out so that a test run crossing 02:00 UTC does not start a settlement run
in the middle of a test.
"""

import os

from livecommerce.celery import app

_sweeper = app.conf.beat_schedule["sweep-webhook-deliveries"]
app.conf.beat_schedule = {
    "sweep-webhook-deliveries": {
        **_sweeper,
        "schedule": float(os.environ.get("SYSTEM_SWEEP_INTERVAL", "1")),
    },
    "expire-orders": app.conf.beat_schedule["expire-orders"],
}

__all__ = ["app"]
