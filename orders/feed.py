"""The live feed of a show (``GET /live-sessions/{id}/feed``): Server-Sent Events read from the
database.

Two kinds of message:

- the session's durable log (``LiveFeedMessage``: ``product.sold_out``,
  ``product.back_in_stock``, ``live_session.ended``), written in the transaction of the change
  it reports, numbered 1, 2, 3, ... per session; the SSE ``id`` is that number;
- ``stats``: a snapshot (paid orders, units sold, gross per currency, available units per
  product) computed from the orders, sent when it differs from the last one sent, checked every
  ``LIVE_FEED_POLL_SECONDS``. Its SSE ``id`` is ``<last log number>:<n>``.

A client reconnecting with ``Last-Event-ID`` gets every log message after the number before the
colon, then fresh stats: nothing is lost, because the log is the database's and a snapshot is
always current.

Two ways to serve it, one module:

- :class:`FeedHub` under ASGI (uvicorn): one poller per session and process, shared by every
  open feed of that session, so hundreds of viewers' feeds cost one set of queries a second and
  no thread each; each feed is an ``asyncio`` queue.
- :func:`sync_feed` under WSGI (``runserver``, the embedded default): each feed polls by itself
  on its own thread and ends after ``LIVE_FEED_SYNC_SECONDS`` (the client resumes by
  ``Last-Event-ID``), so a gunicorn worker is never held for long.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.db.models import Count, F, Sum
from django.utils import timezone

from livecommerce.money import to_decimal_string
from livecommerce.wire import timestamp
from orders.choices import LiveSessionStatus, OrderStatus
from orders.models import LiveFeedMessage, LiveSession, OrderLine, Product
from partners.authentication import Caller
from partners.choices import PartnerKind
from partners.models import APIKey

STATS = "stats"
ENDED = "live_session.ended"
logger = logging.getLogger(__name__)
QUEUE_LIMIT = 1000  # a client this far behind is dropped; it resumes by Last-Event-ID

# Under ASGI every database read of the feeds (authorising a client, its backlog, the hubs'
# polls) runs on these few threads, so a process holds LIVE_FEED_DB_THREADS database
# connections however many feeds are open (Django's per-request thread would keep one
# connection per open feed for as long as it streams).
_db_threads: ThreadPoolExecutor | None = None


async def in_db_thread(function: Callable, *args):
    """``function(*args)`` on one of the feeds' database threads."""
    global _db_threads
    if _db_threads is None:
        _db_threads = ThreadPoolExecutor(
            max_workers=settings.LIVE_FEED_DB_THREADS, thread_name_prefix="live-feed-db"
        )
    return await sync_to_async(function, thread_sensitive=False, executor=_db_threads)(*args)


# --- who may read it ------------------------------------------------------------------------


def feed_session_for(caller, session_id: str) -> LiveSession | None:
    """The session if ``caller`` may read its feed: staff, the host apps it is broadcast on, the
    fulfillment partner that produced it or fulfils a brand it features. None for anyone else
    (answered 404 like an unknown session)."""
    session = LiveSession.objects.filter(pk=session_id).first()
    if session is None:
        return None
    if caller.is_staff:
        return session
    partner = caller.partner
    if partner.kind == PartnerKind.HOST_APP:
        allowed = session.host_apps.filter(pk=partner.pk).exists()
    elif partner.kind == PartnerKind.FULFILLMENT:
        allowed = session.producer_id == partner.pk or (
            Product.objects.filter(
                live_sessions=session, brand__fulfillment_partner=partner
            ).exists()
        )
    else:
        allowed = False
    return session if allowed else None


@dataclass(frozen=True)
class FeedAccess:
    """The question a feed asks again while it is open: may the key that opened it still read
    the session? A value (equal for two feeds of one key and session), so the feeds of a
    session under ASGI share one answer instead of asking the database each (see
    :meth:`FeedHub.still_allowed`)."""

    api_key_id: str
    session_id: str

    def __call__(self) -> bool:
        return caller_may_still_read(self.api_key_id, self.session_id)


def caller_may_still_read(api_key_id: str, session_id: str) -> bool:
    """Whether the key that opened a feed may still read it: the key neither revoked nor
    expired, its partner active, the session still visible to it (a host app taken off the
    show is cut off). A feed re-checks this every ``LIVE_FEED_RECHECK_SECONDS``."""
    api_key = APIKey.objects.get_usable_keys().filter(pk=api_key_id).first()
    if api_key is None or api_key.has_expired:
        return False
    if api_key.partner is not None and not api_key.partner.is_active:
        return False
    caller = Caller(api_key_id=api_key.pk, partner=api_key.partner, role=api_key.role)
    return feed_session_for(caller, session_id) is not None


# --- what it says ---------------------------------------------------------------------------


def sse(*, event: str, data: dict, id: str) -> str:
    """One Server-Sent Events message."""
    return sse_encoded(event=event, data=json.dumps(data, separators=(",", ":")), id=id)


def sse_encoded(*, event: str, data: str, id: str) -> str:
    """One Server-Sent Events message whose data is JSON text already."""
    return f"id: {id}\nevent: {event}\ndata: {data}\n\n"


def parse_last_event_id(value: str | None) -> int:
    """The log number a client last saw (``"12"`` or ``"12:3"``); 0 when absent or garbled.

    A garbled value (``"abc"``, ``"²"``, a thousand digits) is ignored, not refused: the SSE
    spec has the browser send back whatever id it last saw, so the feed starts from the top.
    """
    head = (value or "").split(":", 1)[0].strip()
    return int(head) if head.isascii() and head.isdecimal() and len(head) < 12 else 0


def session_stats(session_id: str) -> dict:
    """The show's sales so far: paid orders not canceled or refunded in full, their units net of
    returns and their merchandise net of refunds (per currency), and each product's units on
    hand. Two queries."""
    sold = (
        OrderLine.objects.filter(order__live_session_id=session_id, order__paid_at__isnull=False)
        .exclude(order__status__in=(OrderStatus.CANCELED, OrderStatus.REFUNDED))
        .values("order__currency")
        .annotate(
            orders=Count("order_id", distinct=True),
            units=Sum(F("quantity") - F("refunded_quantity")),
            gross=Sum(F("subtotal") - F("refunded_amount")),
        )
        .order_by("order__currency")
    )
    orders = units = 0
    gross = {}
    for row in sold:
        orders += row["orders"]
        units += row["units"] or 0
        gross[row["order__currency"]] = to_decimal_string(row["gross"] or 0, row["order__currency"])
    available = dict(
        Product.objects.filter(live_sessions=session_id)
        .order_by("pk")
        .values_list("pk", "inventory")
    )
    return {"orders": orders, "units_sold": units, "gross": gross, "available": available}


@dataclass
class Snapshot:
    """One read of a session: its status, its log after a number, its stats."""

    status: str
    messages: list[LiveFeedMessage]
    stats: dict


def read_session(session_id: str, after: int, *, limit: int = 500) -> Snapshot | None:
    """Everything a feed needs from the database at one moment; None if the session is gone.

    The log is read before the stats, so stats are never older than the messages sent before
    them; at most ``limit`` messages per read (the next read takes the rest).
    """
    status = LiveSession.objects.filter(pk=session_id).values_list("status", flat=True).first()
    if status is None:
        return None
    messages = list(
        LiveFeedMessage.objects.filter(session_id=session_id, seq__gt=after).order_by("seq")[:limit]
    )
    return Snapshot(status=status, messages=messages, stats=session_stats(session_id))


def message_event(message: LiveFeedMessage) -> str:
    return sse(event=message.type, data=message.data, id=str(message.seq))


def stats_data(session_id: str, status: str, stats: dict) -> str:
    """A ``stats`` message's data as JSON text, ``at`` now."""
    data = {
        "live_session": session_id,
        "status": status,
        **stats,
        "at": timestamp(timezone.now()),
    }
    return json.dumps(data, separators=(",", ":"))


def stats_event(session_id: str, status: str, stats: dict, *, seq: int, tick: int) -> str:
    return sse_encoded(event=STATS, data=stats_data(session_id, status, stats), id=f"{seq}:{tick}")


def _is_over(snapshot: Snapshot) -> bool:
    """The show ended and its log has been read to the end (``live_session.ended`` is last)."""
    return snapshot.status == LiveSessionStatus.ENDED and not snapshot.messages


PREAMBLE = "retry: 1000\n\n"  # reconnect after a second (then with Last-Event-ID)


# --- WSGI: one thread per feed, for a while --------------------------------------------------


def sync_feed(
    session_id: str, last_seen: int, allowed: Callable[[], bool] | None = None
) -> Iterator[str]:
    """The feed as a plain iterator, each feed polling for itself (runserver, gunicorn).

    ``allowed()`` is asked every ``LIVE_FEED_RECHECK_SECONDS``; the feed ends when it is false.
    """
    poll = settings.LIVE_FEED_POLL_SECONDS
    deadline = time.monotonic() + settings.LIVE_FEED_SYNC_SECONDS
    keepalive_at = time.monotonic() + settings.LIVE_FEED_KEEPALIVE_SECONDS
    recheck_at = time.monotonic() + settings.LIVE_FEED_RECHECK_SECONDS
    seq, tick, last_stats = last_seen, 0, None
    yield PREAMBLE
    # The request's own database connection (Django closes it when the response is closed).
    while True:
        if allowed is not None and time.monotonic() >= recheck_at:
            if not allowed():
                return
            recheck_at = time.monotonic() + settings.LIVE_FEED_RECHECK_SECONDS
        snapshot = read_session(session_id, seq)
        if snapshot is None:
            return
        for message in snapshot.messages:
            seq = message.seq
            yield message_event(message)
        if snapshot.stats != last_stats:
            tick += 1
            last_stats = snapshot.stats
            yield stats_event(session_id, snapshot.status, snapshot.stats, seq=seq, tick=tick)
            keepalive_at = time.monotonic() + settings.LIVE_FEED_KEEPALIVE_SECONDS
        if _is_over(snapshot) or time.monotonic() > deadline:
            return
        if time.monotonic() > keepalive_at:
            yield ": keepalive\n\n"
            keepalive_at = time.monotonic() + settings.LIVE_FEED_KEEPALIVE_SECONDS
        time.sleep(poll)


# --- ASGI: one poller per session, many feeds ------------------------------------------------


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Subscriber:
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    dropped: bool = False


class FeedHub:
    """One session's poller in this process, fanning its reads out to every open feed.

    Created on a session's first feed and gone when its last one closes. Each read goes to a
    worker thread (the ORM is synchronous), so the event loop and the web workers stay free.
    """

    hubs: dict[str, FeedHub] = {}

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.subscribers: set[_Subscriber] = set()
        # The log number read up to. A new hub reads the whole log (a few messages per show):
        # a feed that joined before the hub's first read must not miss a message committed
        # between its own backlog read and the hub's first.
        self.seq = 0
        self.task: asyncio.Task | None = None
        # Access checks shared by the hub's feeds: the question -> (asked at, the answer).
        self.checks: dict[Callable[[], bool], tuple[float, asyncio.Future]] = {}

    @classmethod
    def subscribe(cls, session_id: str) -> tuple[FeedHub, _Subscriber]:
        hub = cls.hubs.get(session_id)
        if hub is None:
            hub = cls.hubs[session_id] = cls(session_id)
        subscriber = _Subscriber()
        hub.subscribers.add(subscriber)
        if hub.task is None or hub.task.done():
            hub.task = asyncio.get_running_loop().create_task(hub._run())
        return hub, subscriber

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        self.subscribers.discard(subscriber)

    async def still_allowed(self, allowed: Callable[[], bool]) -> bool:
        """``allowed()``, asked of the database at most once per half
        ``LIVE_FEED_RECHECK_SECONDS`` for every feed of the hub asking the same question (one
        key, one session: a :class:`FeedAccess`), so 200 feeds opened with one key cost one
        check, not 200 (the profile of 200 open feeds had three quarters of the feed process's
        time in these checks). A feed so learns of a lost access within 1.5 rechecks."""
        now = time.monotonic()
        # answers too old to share are forgotten, so the dict holds the keys of open feeds only
        fresh = settings.LIVE_FEED_RECHECK_SECONDS / 2
        for question, (asked_at, _) in list(self.checks.items()):
            if now - asked_at > fresh:
                del self.checks[question]
        asked = self.checks.get(allowed)
        if asked is None or (asked[1].done() and _failed(asked[1])):
            answer = asyncio.ensure_future(in_db_thread(_allowed, allowed))
            asked = self.checks[allowed] = (now, answer)
        return await asyncio.shield(asked[1])

    def _send(self, item: tuple) -> None:
        for subscriber in list(self.subscribers):
            try:
                subscriber.queue.put_nowait(item)
            except asyncio.QueueFull:
                subscriber.dropped = True
                self.subscribers.discard(subscriber)

    async def _run(self) -> None:
        try:
            while self.subscribers:
                began = time.monotonic()
                try:
                    snapshot = await in_db_thread(_read, self.session_id, self.seq)
                except Exception:
                    # The database away for a moment: the feeds stay open and catch up after.
                    logger.exception("live feed of %s could not read", self.session_id)
                    await asyncio.sleep(max(1.0, settings.LIVE_FEED_POLL_SECONDS))
                    continue
                if snapshot is None:
                    self._send(("gone",))
                    return
                for message in snapshot.messages:
                    self.seq = message.seq
                    self._send(("message", message))
                # rendered once here, not once per feed (200 feeds: 200 JSON encodings a second)
                data = stats_data(self.session_id, snapshot.status, snapshot.stats)
                self._send(("stats", snapshot.status, snapshot.stats, self.seq, began, data))
                if _is_over(snapshot):
                    self._send(("over",))
                await asyncio.sleep(settings.LIVE_FEED_POLL_SECONDS)
        finally:
            if FeedHub.hubs.get(self.session_id) is self and not self.subscribers:
                del FeedHub.hubs[self.session_id]


async def async_feed(
    session_id: str, last_seen: int, allowed: Callable[[], bool] | None = None
) -> AsyncIterator[str]:
    """The feed under ASGI: join the session's hub, send the backlog, then what the hub sends.

    ``allowed()`` (run on a feed database thread, its answer shared by the hub's feeds that ask
    the same) is asked every ``LIVE_FEED_RECHECK_SECONDS``, whether or not the hub sends
    anything; the feed ends when it is false.
    """
    hub, subscriber = FeedHub.subscribe(session_id)  # first, so nothing falls between the two
    seq, tick, last_stats = last_seen, 0, None
    keepalive = settings.LIVE_FEED_KEEPALIVE_SECONDS
    recheck = settings.LIVE_FEED_RECHECK_SECONDS
    try:
        yield PREAMBLE
        # The backlog: every log message after the client's last, read to the end.
        while True:
            snapshot = await in_db_thread(_read, session_id, seq)
            if snapshot is None:
                return
            for message in snapshot.messages:
                seq = message.seq
                yield message_event(message)
            if not snapshot.messages:
                break
        # The hub's stats from a read that began before this one ended may be older than these:
        # sent after them, the counts would go back. Only later reads' stats are sent.
        fresh_from = time.monotonic()
        tick += 1
        last_stats = snapshot.stats
        yield stats_event(session_id, snapshot.status, snapshot.stats, seq=seq, tick=tick)
        if _is_over(snapshot):
            return
        keepalive_at = time.monotonic() + keepalive
        recheck_at = time.monotonic() + recheck
        while not subscriber.dropped:
            if allowed is not None and time.monotonic() >= recheck_at:
                if not await hub.still_allowed(allowed):
                    return
                recheck_at = time.monotonic() + recheck
            if time.monotonic() >= keepalive_at:
                yield ": keepalive\n\n"
                keepalive_at = time.monotonic() + keepalive
            wait = min(keepalive_at, recheck_at if allowed is not None else keepalive_at)
            try:
                item = await asyncio.wait_for(
                    subscriber.queue.get(), max(wait - time.monotonic(), 0.01)
                )
            except TimeoutError:
                continue
            keepalive_at = time.monotonic() + keepalive  # quiet for a while: a keep-alive
            kind = item[0]
            if kind == "message" and item[1].seq > seq:
                seq = item[1].seq
                yield message_event(item[1])
            elif kind == "stats" and item[2] != last_stats and item[3] >= seq:
                if item[4] < fresh_from:
                    continue
                tick += 1
                last_stats = item[2]
                yield sse_encoded(event=STATS, data=item[5], id=f"{seq}:{tick}")
            elif kind in ("over", "gone"):
                return
    finally:
        hub.unsubscribe(subscriber)


def _failed(future: asyncio.Future) -> bool:
    return future.cancelled() or future.exception() is not None


def _allowed(allowed: Callable[[], bool]) -> bool:
    close_old_connections()
    return allowed()


def _read(session_id: str, after: int) -> Snapshot | None:
    close_old_connections()  # a connection past CONN_MAX_AGE or broken is replaced
    return read_session(session_id, after)


def is_asgi(request) -> bool:
    return isinstance(request, ASGIRequest)
