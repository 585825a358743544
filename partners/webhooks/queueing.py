"""Handing deliveries to the send task after commit, or to the sweeper when the broker is away.

Publishing an event (``partners.events``) queues its deliveries here, and the send task
(``partners.webhooks.tasks``) sends them through ``services``, which publish events in turn; so
this module names the task instead of importing it, and the import graph has no cycle. The
partners app imports the tasks module when it is ready, so the task is registered in every
process, the web processes included (where, without a broker, it runs in-process).

New deliveries (``queue_new_deliveries``, what publishing an event calls) are coalesced when the
broker is Redis: see "Coalesced wake-ups" below.
"""

from contextlib import suppress
from time import monotonic, sleep

import redis
from celery import current_app

from partners.webhooks import conf
from partners.webhooks.choices import WebhookDeliveryStatus
from partners.webhooks.models import WebhookDelivery

# When the broker refuses a message, this process leaves queueing to the sweeper for a while:
# a broker that is down or hung then costs one request a timeout, not every request, and the
# deliveries, released to the sweeper, go out on its first round once the broker is back.
BROKER_PAUSE = 30.0  # seconds
_broker_failed_at: float | None = None
# Deliveries of one endpoint sent by one task: one transaction, one locked read, one INSERT of
# the attempts and one UPDATE of the deliveries for them all, over one kept connection.
BATCH_SIZE = 50
# The send task, by its registered name (``partners.webhooks.tasks.deliver_webhooks``).
DELIVER_WEBHOOKS = "partners.tasks.deliver_webhooks"
# The drain task (``partners.webhooks.tasks.drain_webhook_queue``), by its name likewise.
DRAIN_WEBHOOK_QUEUE = "partners.tasks.drain_webhook_queue"

# --- Coalesced wake-ups ---------------------------------------------------------------------
#
# In a live drop every order's commit has deliveries to send. One Celery message per commit cost
# the web process about 0.5 ms of CPU (Celery building and publishing the message) and the worker
# one task run per delivery. With a Redis broker, a commit instead appends its deliveries to one
# Redis list and sets a flag (``SET NX``) in the same round trip (about 0.07 ms); only the commit
# that set the flag queues a drain task, which first waits ``WEBHOOK_DRAIN_DELAY`` (0.1 s) so that
# the commits of that moment join it. The drain takes everything waiting, queues the send task per
# batch of up to ``BATCH_SIZE`` of an endpoint's deliveries, and holds the flag until the list
# is empty. In a rush one drain serves many commits and the sends go out in batches: in the
# order rush (bench/), the worker's CPU per delivery went from about 6 ms to about 1.5 ms.
#
# Nothing is lost with the list: the deliveries are rows first (``enqueued_at`` set), so if Redis
# loses the list or a drain task is lost, the sweeper queues them after
# ``WEBHOOK_REQUEUE_AFTER``; a delivery queued twice is sent once (the send task re-reads and
# locks it). The flag expires after ``DRAIN_FLAG_TTL_MS``, so a lost drain task holds up
# nothing longer than that. Needs Redis 6.2 or later (``LPOP`` with a count).
PENDING_LIST = "livecommerce:webhooks:pending"
DRAIN_FLAG = "livecommerce:webhooks:draining"
DRAIN_FLAG_TTL_MS = 10_000
DRAIN_POP = 500  # deliveries taken from the list per round
_clients: dict[str, redis.Redis] = {}


def queue_new_deliveries(delivery_ids: list[str], *, endpoint_ids: list[str]) -> None:
    """Queue just-published deliveries (called after commit): coalesced through the Redis list
    when the broker is Redis, else ``queue_deliveries``. A broker failure is handled as there."""
    global _broker_failed_at
    client = _wake_up_client()
    if client is None:
        queue_deliveries(delivery_ids, endpoint_ids=endpoint_ids)
        return
    if _paused():
        _leave_to_sweeper(delivery_ids)
        return
    flagged = False
    try:
        pipe = client.pipeline(transaction=False)
        pipe.rpush(
            PENDING_LIST, *(f"{d} {e}" for d, e in zip(delivery_ids, endpoint_ids, strict=True))
        )
        pipe.set(DRAIN_FLAG, "1", nx=True, px=DRAIN_FLAG_TTL_MS)
        _, flagged = pipe.execute()
        if flagged:
            current_app.tasks[DRAIN_WEBHOOK_QUEUE].apply_async()
    except Exception:
        _broker_failed_at = monotonic()
        _leave_to_sweeper(delivery_ids)
        if flagged:  # no drain was queued: let another process's commit queue one
            _release_flag(client)
        raise
    _broker_failed_at = None


def _release_flag(client) -> None:
    with suppress(redis.RedisError):  # if not, it expires after DRAIN_FLAG_TTL_MS
        client.delete(DRAIN_FLAG)


def drain_pending() -> int:
    """The drain task's work: queue the send task for every delivery in the list, in batches of
    one endpoint's, until the list is empty; then let the flag go. How many it took."""
    client = _wake_up_client()
    if client is None:
        return 0
    # The batching window: the commits of the next moment join the list while the flag is held.
    # Waited here, in a task already acknowledged (``acks_late=False``), not with a countdown: a
    # countdown keeps the message unacknowledged in the worker, and kombu's Redis transport can
    # crash the worker when the broker connection drops with such messages outstanding.
    delay = conf.drain_delay()
    if delay and client.llen(PENDING_LIST) < BATCH_SIZE:
        sleep(delay)
    try:
        return _drain(client)
    except Exception:
        _release_flag(client)  # what it popped is left to the sweeper; the next commit drains
        raise


def _drain(client) -> int:
    taken = 0
    while True:
        items = client.lpop(PENDING_LIST, DRAIN_POP)
        if items:
            pairs = [item.decode().split(" ") for item in items]
            queue_deliveries(
                [d for d, _ in pairs], endpoint_ids=[e for _, e in pairs], sweeping=True
            )
            taken += len(pairs)
            continue
        # Let the flag go, then look again: a commit that found the flag still set (so queued no
        # drain) pushed before this DEL, and is taken here; one after it queues its own drain.
        client.delete(DRAIN_FLAG)
        if not client.llen(PENDING_LIST) or not client.set(
            DRAIN_FLAG, "1", nx=True, px=DRAIN_FLAG_TTL_MS
        ):
            return taken


def _wake_up_client() -> redis.Redis | None:
    """A Redis client on the broker (one per broker URL, with the broker's socket timeouts), or
    None when tasks run in-process or the broker is not Redis."""
    conf = current_app.conf
    url = conf.broker_url or ""
    if conf.task_always_eager or not url.startswith(("redis://", "rediss://")):
        return None
    if url not in _clients:
        options = conf.broker_transport_options or {}
        _clients[url] = redis.Redis.from_url(
            url,
            socket_connect_timeout=options.get("socket_connect_timeout"),
            socket_timeout=options.get("socket_timeout"),
        )
    return _clients[url]


def queue_deliveries(
    delivery_ids: list[str],
    *,
    endpoint_ids: list[str] | None = None,
    countdown: float | None = None,
    sweeping: bool = False,
) -> None:
    """Queue the send task for the deliveries (called after commit): one task per batch of up
    to ``BATCH_SIZE`` deliveries of one endpoint (``endpoint_ids``: each delivery's endpoint,
    in the same order; without it the deliveries are taken as one endpoint's), in order.

    If the broker cannot take them (or failed moments ago), the deliveries are left to the
    sweeper (``enqueued_at`` cleared) and, for a failure now, the error is raised to the
    caller's robust on-commit hook, which logs it. The sweeper itself always tries.
    """
    global _broker_failed_at
    if _paused() and not sweeping:
        _leave_to_sweeper(delivery_ids)
        return
    batches = _batches(delivery_ids, endpoint_ids)
    send = current_app.tasks[DELIVER_WEBHOOKS]
    for done, batch in enumerate(batches):
        try:
            send.apply_async(args=[batch], countdown=countdown)
        except Exception:
            _broker_failed_at = monotonic()
            _leave_to_sweeper([pk for rest in batches[done:] for pk in rest])
            raise
    _broker_failed_at = None


def _paused() -> bool:
    """Whether this process left queueing to the sweeper after a broker failure moments ago."""
    return _broker_failed_at is not None and monotonic() - _broker_failed_at < BROKER_PAUSE


def _batches(delivery_ids: list[str], endpoint_ids: list[str] | None) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for delivery_id, endpoint_id in zip(
        delivery_ids, endpoint_ids or [""] * len(delivery_ids), strict=True
    ):
        groups.setdefault(endpoint_id, []).append(delivery_id)
    return [
        ids[start : start + BATCH_SIZE]
        for ids in groups.values()
        for start in range(0, len(ids), BATCH_SIZE)
    ]


def _leave_to_sweeper(delivery_ids: list[str]) -> None:
    WebhookDelivery.objects.filter(
        pk__in=delivery_ids, status=WebhookDeliveryStatus.PENDING
    ).update(enqueued_at=None)


def countdown_allowed(delay: float) -> bool:
    # Eager mode (no broker) would run a "retry in 5 minutes" at once; leave it to the sweeper.
    return not current_app.conf.task_always_eager and delay <= conf.countdown_max()
