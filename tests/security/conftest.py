"""Fixtures for the fuzzing, isolation and security tests: the live service, a local webhook
receiver, and a world of real data (``tests.security.world``)."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pytest_django.live_server_helper import LiveServer


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    """The service on 127.0.0.1 and a port the OS picks (pytest-django's default host is
    ``localhost``, which may resolve to ::1 first)."""
    server = LiveServer("127.0.0.1")
    yield server
    server.stop()


# Every webhook body the receiver got, with its path (the world gives each partner its own).
RECEIVED: list[tuple[str, str]] = []


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        RECEIVED.append((self.path, body.decode(errors="replace")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[str]:
    """A webhook receiver on 127.0.0.1 (port 0) answering 204 to every delivery; its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_webhook_urls(settings):
    """Webhook URLs on loopback are allowed (the receiver listens there)."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
