"""Webhook delivery settings.

Each value comes from the Django setting of the same name when the project defines one, else
from the environment variable of that name, else from the default here; durations are seconds
(a setting may also be a ``timedelta``). ``WEBHOOK_ALLOW_PRIVATE_URLS`` is a project setting.

- ``WEBHOOK_RETRY_SCHEDULE``: delays before the 2nd, 3rd, ... attempt (comma-separated in the
  environment). The default: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 10 h (9 attempts over
  37.6 hours; at least 30 hours however the jitter falls, so never less than a day).
- ``WEBHOOK_RETRY_JITTER``: each delay is spread by up to this fraction either way (0.2).
- ``WEBHOOK_TIMEOUT``: seconds to wait for the endpoint to connect and to answer (5).
- ``WEBHOOK_RETRY_AFTER_MAX``: the longest ``Retry-After`` honoured (6 h).
- ``WEBHOOK_DISABLE_AFTER``: an endpoint failing without a success for this long is disabled
  (5 days).
- ``WEBHOOK_REQUEUE_AFTER``: the sweeper queues a due delivery again when no worker has tried it
  this long after it was queued (120 s): a lost task, or a worker killed mid-send.
- ``WEBHOOK_COUNTDOWN_MAX``: retries due within this many seconds are queued with a countdown;
  later ones are left to the sweeper (600 s, well below the Redis visibility timeout).
- ``WEBHOOK_DRAIN_DELAY``: with a Redis broker, new deliveries wait this long for others to join
  them before the drain task queues their sends in batches (0.1 s; see ``queueing``).
- ``WEBHOOK_SECRET_GRACE``: how long the previous secret keeps signing after a rotation (24 h).
"""

from datetime import timedelta

import environ
from django.conf import settings

_env = environ.Env()

DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000, 36000)


def _seconds(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = _env.float(name, default=default)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def retry_schedule() -> list[float]:
    value = getattr(settings, "WEBHOOK_RETRY_SCHEDULE", None)
    if value is None:
        value = _env.list("WEBHOOK_RETRY_SCHEDULE", cast=float, default=DEFAULT_RETRY_SCHEDULE)
    return [v.total_seconds() if isinstance(v, timedelta) else float(v) for v in value]


def retry_jitter() -> float:
    return min(max(_seconds("WEBHOOK_RETRY_JITTER", 0.2), 0.0), 0.5)


def timeout() -> float:
    return _seconds("WEBHOOK_TIMEOUT", 5)


def retry_after_max() -> float:
    return _seconds("WEBHOOK_RETRY_AFTER_MAX", 6 * 3600)


def disable_after() -> timedelta:
    return timedelta(seconds=_seconds("WEBHOOK_DISABLE_AFTER", 5 * 86400))


def requeue_after() -> timedelta:
    return timedelta(seconds=_seconds("WEBHOOK_REQUEUE_AFTER", 120))


def countdown_max() -> float:
    return _seconds("WEBHOOK_COUNTDOWN_MAX", 600)


def drain_delay() -> float:
    return _seconds("WEBHOOK_DRAIN_DELAY", 0.1)


def secret_grace() -> timedelta:
    return timedelta(seconds=_seconds("WEBHOOK_SECRET_GRACE", 86400))


def allow_private_urls() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_URLS", False))
