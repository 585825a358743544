"""Helpers for webhook tests: a local receiver that verifies signatures, endpoints, events.

The receiver is a real HTTP server on 127.0.0.1 (port 0) in a thread. Every request it gets is
verified with the public ``standardwebhooks`` library against the secrets the test gives it.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.db import transaction
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from partners.events import event_publish
from partners.webhooks import signing
from partners.webhooks.models import WebhookEndpoint


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: str
    verified_with: list[str]
    answered: int
    peer: tuple[str, int] = ("", 0)  # the sender's address and port: one per connection

    @property
    def payload(self) -> dict:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.payload["id"]


@dataclass
class Receiver:
    """A webhook receiver. ``status`` (and ``headers``) is what it answers; while ``hold`` is
    set it keeps each request waiting until the event is set. Created bound but, with
    ``listening=False``, not listening: connections are refused until ``start()``."""

    secrets: list[str] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None
    keep_alive: bool = False  # HTTP/1.1 persistent connections, as a real receiver keeps them

    def __post_init__(self) -> None:
        self.received: list[Received] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if self.keep_alive else "HTTP/1.0"
            disable_nagle_algorithm = True  # as real servers; see bench/receiver.py

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                headers = {key.lower(): value for key, value in self.headers.items()}
                status, extra, hold = receiver.status, dict(receiver.headers), receiver.hold
                item = Received(
                    self.path,
                    headers,
                    body,
                    receiver.verify(body, headers),
                    status,
                    tuple(self.client_address[:2]),
                )
                with receiver.arrived:
                    receiver.received.append(item)
                    receiver.arrived.notify_all()
                if hold is not None:
                    hold.wait(30)
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender went away (killed mid-send)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.server_bind()
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._thread: threading.Thread | None = None

    def verify(self, body: str, headers: dict[str, str]) -> list[str]:
        verified = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(secret)
        return verified

    def start(self) -> "Receiver":
        self.server.server_activate()
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5)
        self.server.server_close()

    def of_event(self, event_id: str) -> list[Received]:
        with self.arrived:
            return [item for item in self.received if item.event_id == event_id]

    def wait_for_requests(self, count: int, timeout: float = 20) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            assert len(self.received) >= count, f"only {len(self.received)} of {count} arrived"
            return list(self.received)


def make_endpoint(partner, url: str, events=("*",), **kwargs) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        partner=partner, url=url, events=list(events), secret=signing.new_secret(), **kwargs
    )


def publish(*, type="order.paid", object_id="ord_test", data=None, partners=()):
    """Publish an event the way a state change does: inside its transaction."""
    with transaction.atomic():
        return event_publish(
            type=type,
            object_id=object_id,
            data=data if data is not None else {"id": object_id},
            partner_ids=[partner.pk for partner in partners],
        )


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.1, message="", tick=None):
    """Poll ``predicate`` until it is truthy; ``tick`` runs every second (a beat stand-in)."""
    deadline = time.monotonic() + timeout
    next_tick = time.monotonic()
    while True:
        if tick is not None and time.monotonic() >= next_tick:
            tick()
            next_tick = time.monotonic() + 1
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting: {message() if callable(message) else message}"
            )
        time.sleep(interval)
