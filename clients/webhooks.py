"""Receiving the service's webhooks: signature checks and a small threaded receiver.

Deliveries follow the Standard Webhooks specification: headers ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">``). ``verify`` checks them with the public ``standardwebhooks`` library,
so a partner app needs nothing of ours to do the same.

A delivery comes at least once and not necessarily in order, so a receiver:

- drops a delivery whose ``webhook-id`` it has seen already (a retry of one it took), and
- uses each event's ``sequence`` (1, 2, 3, ... per object) to ignore an event older than one it
  has already applied to that object.

``WebhookReceiver`` does both, and can be told to misbehave (answer 500 or 410, answer slowly)
so tests and simulators can watch the service retry.
"""

from __future__ import annotations

import binascii
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks import WebhookVerificationError as _LibraryError


class WebhookVerificationError(Exception):
    """The delivery is not from the service: bad or missing signature, or a stale timestamp."""


def verify(secret: str | Iterable[str], headers: Mapping[str, str], body: bytes | str) -> dict:
    """Check a delivery's signature and timestamp and return its JSON body.

    ``secret`` is the endpoint's ``whsec_...`` secret, or several of them while a rotated secret
    is being rolled out (a delivery signed with any of them is accepted). Raises
    ``WebhookVerificationError`` on a bad signature, missing headers, a timestamp more than five
    minutes away from now, or a body that is not JSON. Verify the raw body bytes, before any JSON
    parsing, or the signature will not match.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise WebhookVerificationError("no secret to verify with")
    last_error: Exception | None = None
    for candidate in secrets:
        try:
            payload = Webhook(candidate).verify(body, dict(headers))
        except (_LibraryError, ValueError, binascii.Error) as exc:
            # ValueError covers malformed signature headers and a body that is not JSON.
            last_error = exc
            continue
        if not isinstance(payload, dict):
            raise WebhookVerificationError("the body is not a JSON object")
        return payload
    raise WebhookVerificationError(str(last_error)) from last_error


def object_id_of(event: Mapping[str, Any]) -> str:
    """The id of the object an event is about, whose events ``sequence`` counts."""
    if event.get("object_id"):
        return str(event["object_id"])
    data = event.get("data") or {}
    if isinstance(data.get("object"), Mapping) and data["object"].get("id"):
        return str(data["object"]["id"])
    if data.get("id"):
        return str(data["id"])
    return str(event.get("id", ""))


@dataclass
class Attempt:
    """One HTTP request the receiver got, whatever it answered."""

    webhook_id: str | None
    status: int
    verified: bool
    duplicate: bool = False
    stale: bool = False
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)
    received_at: float = field(default_factory=time.monotonic)


class WebhookReceiver:
    """A webhook endpoint on ``127.0.0.1`` (port chosen by the OS) for tests and simulators.

    ``url`` is where to point a webhook endpoint. Verified deliveries are kept once each (by
    ``webhook-id``) in ``events``, in arrival order; ``events_for(object_id)`` gives one object's
    events in ``sequence`` order. ``on_event`` (optional) is called, from the receiving thread,
    with each new event that is not older than one already seen for its object; if it raises,
    the delivery is answered 500 and forgotten, so the service's retry is processed anew.
    ``next_event()`` hands the same events to a consumer thread instead.

    Misbehaving on purpose: ``fail_with(500, times=2)`` answers 500 to the next two deliveries
    (``times=None``: until ``answer_normally()``), ``fail_with(410)`` says the endpoint is gone,
    and ``slow_down(seconds)`` delays every answer.
    """

    def __init__(
        self,
        secret: str | Iterable[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/webhooks",
        on_event: Callable[[dict], None] | None = None,
        object_key: Callable[[Mapping[str, Any]], str] = object_id_of,
    ) -> None:
        self.secret = secret
        self.path = path
        self.on_event = on_event
        self.object_key = object_key
        self.events: list[dict] = []
        self.attempts: list[Attempt] = []
        self._seen_ids: set[str] = set()
        self._last_sequence: dict[str, int] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._inbox: queue.Queue[dict] = queue.Queue()
        self._failure_status: int | None = None
        self._failures_left: int | None = None
        self._retry_after: int | None = None
        self._delay = 0.0
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    def start(self) -> WebhookReceiver:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="webhook-receiver", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- behaviour ---

    def fail_with(
        self, status: int, *, times: int | None = None, retry_after: int | None = None
    ) -> None:
        """Answer ``status`` (500, 410, 503...) instead of taking deliveries, ``times`` times
        (``None``: until ``answer_normally``), with ``Retry-After`` if given."""
        with self._lock:
            self._failure_status = status
            self._failures_left = times
            self._retry_after = retry_after

    def answer_normally(self) -> None:
        with self._lock:
            self._failure_status = None
            self._failures_left = None
            self._retry_after = None

    def slow_down(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each delivery (0 to stop)."""
        self._delay = seconds

    # --- what arrived ---

    def events_for(self, object_id: str) -> list[dict]:
        """One object's events, in ``sequence`` order."""
        with self._lock:
            mine = [e for e in self.events if self.object_key(e) == object_id]
        return sorted(mine, key=lambda e: e.get("sequence", 0))

    def wait_for(
        self, predicate: Callable[[list[dict]], bool], *, timeout: float = 10.0
    ) -> list[dict]:
        """Block until ``predicate(events)`` holds; returns the events, or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not predicate(self.events):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"webhooks did not arrive in {timeout}s; got {len(self.events)}: "
                        f"{[e.get('type') for e in self.events]}"
                    )
                self._arrived.wait(remaining)
            return list(self.events)

    def next_event(self, timeout: float | None = None) -> dict:
        """The next new, in-order event (raises ``queue.Empty`` after ``timeout``)."""
        return self._inbox.get(timeout=timeout)

    # --- the HTTP side ---

    def _receive(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        webhook_id = headers.get("webhook-id")
        raw = dict(headers)
        with self._lock:
            if self._failure_status is not None:
                status = self._failure_status
                if self._failures_left is not None:
                    self._failures_left -= 1
                    if self._failures_left <= 0:
                        self._failure_status = self._failures_left = None
                self.attempts.append(Attempt(webhook_id, status, False, headers=raw, body=body))
                extra = {} if self._retry_after is None else {"Retry-After": str(self._retry_after)}
                return status, extra
        try:
            event = verify(self.secret, headers, body) if self.secret else json.loads(body)
        except (WebhookVerificationError, ValueError):
            with self._lock:
                self.attempts.append(Attempt(webhook_id, 400, False, headers=raw, body=body))
            return 400, {}
        with self._arrived:
            if webhook_id and webhook_id in self._seen_ids:
                self.attempts.append(
                    Attempt(webhook_id, 200, True, duplicate=True, headers=raw, body=body)
                )
                return 200, {}
            if webhook_id:
                self._seen_ids.add(webhook_id)
            key = self.object_key(event)
            sequence = int(event.get("sequence") or 0)
            previous = self._last_sequence.get(key, 0)
            stale = bool(sequence) and sequence <= previous
            if not stale:
                self._last_sequence[key] = max(sequence, previous)
        if not stale and self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                # Not taken: answer 500 and forget it, so the service's retry is processed anew.
                with self._lock:
                    self._seen_ids.discard(webhook_id or "")
                    if self._last_sequence.get(key) == max(sequence, previous):
                        self._last_sequence[key] = previous
                    self.attempts.append(Attempt(webhook_id, 500, True, headers=raw, body=body))
                return 500, {}
        with self._arrived:
            self.events.append(event)
            self.attempts.append(
                Attempt(webhook_id, 200, True, stale=stale, headers=raw, body=body)
            )
            self._arrived.notify_all()
        if not stale:
            self._inbox.put(event)
        return 200, {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, extra = receiver._receive(headers, body)
                if receiver._delay:
                    time.sleep(receiver._delay)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests and simulators print what matters themselves

        return Handler
