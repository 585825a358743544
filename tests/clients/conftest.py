"""Fixtures for the client tests: the real service over HTTP, keys, and a misbehaving network.

Every test here talks to pytest-django's live server (the real WSGI application on 127.0.0.1,
port chosen by the OS) through ``clients.LiveCommerceClient``. Only the first key is made
directly, the way an operator runs ``create_staff_key``; everything else goes over HTTP.
"""

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from pytest_django.live_server_helper import LiveServer

from clients import LiveCommerceClient
from clients.api import RetryInfo
from partners.choices import StaffRole
from partners.services import api_key_create


@pytest.fixture(scope="session")
def live_server(request) -> Iterator[LiveServer]:
    """The service on 127.0.0.1 and a free port (pytest-django's default host is ``localhost``)."""
    server = LiveServer("127.0.0.1")
    yield server
    server.stop()


@dataclass
class Recorder:
    """Collects what a client reports before each retry; sleeps for real by default."""

    real_sleep: bool = True
    retries: list[RetryInfo] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)

    def on_retry(self, info: RetryInfo) -> None:
        self.retries.append(info)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.real_sleep:
            threading.Event().wait(seconds)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def base_url(live_server) -> str:
    return live_server.url


@pytest.fixture
def ops_key(transactional_db) -> str:
    _, raw = api_key_create(name="bootstrap", role=StaffRole.OPS)
    return raw


@pytest.fixture
def finance_key(transactional_db) -> str:
    _, raw = api_key_create(name="bootstrap", role=StaffRole.FINANCE)
    return raw


@pytest.fixture
def make_client(base_url, recorder):
    """``make_client(key, base=..., **options)``: a client whose retries ``recorder`` sees.

    Every client made here is closed after the test: an open keep-alive connection would keep
    the live server's request thread, and its database session, alive past the test run.
    """
    made: list[LiveCommerceClient] = []

    def make(key: str | None, *, base: str | None = None, **options) -> LiveCommerceClient:
        options = {
            "backoff": 0.01,
            "on_retry": recorder.on_retry,
            "sleep": recorder.sleep,
            **options,
        }
        client = LiveCommerceClient(base or base_url, key, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def ops(make_client, ops_key) -> LiveCommerceClient:
    """An ops client with quick backoff, whose retries the test can read from ``recorder``."""
    return make_client(ops_key)


@pytest.fixture
def partner_client(ops, make_client):
    """``partner_client("brand")``: a new partner of that kind and a client holding its key."""

    def make(kind: str, **fields) -> LiveCommerceClient:
        partner = ops.partners.create(kind=kind, name=f"A {kind}", **fields)
        key = ops.partners.create_api_key(partner["id"], name="test")["key"]
        client = make_client(key)
        client.partner = partner
        return client

    return make


class FlakyProxy:
    """A real HTTP hop between client and service that can lose answers or invent failures.

    ``lose_responses("POST", times=1)``: the request reaches the service, which does the work,
    but the connection is closed before its answer comes back (a timeout on a mobile network).
    ``answer(503, times=2)``: answer without forwarding, as a load balancer does when the
    service is unavailable. ``forwarded`` lists what reached the service.
    """

    HOP_HEADERS = frozenset(
        {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}
    )

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.forwarded: list[tuple[str, str, dict[str, str]]] = []
        self._lose: dict[str, int] = {}
        self._answers: list[tuple[int, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def lose_responses(self, method: str, *, times: int = 1) -> None:
        with self._lock:
            self._lose[method.upper()] = times

    def answer(self, status: int, *, times: int = 1, headers=None, body: bytes = b"") -> None:
        with self._lock:
            self._answers.extend([(status, headers or {}, body)] * times)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._session.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    invented = proxy._answers.pop(0) if proxy._answers else None
                if invented is not None:
                    status, headers, content = invented
                    self._reply(status, headers, content)
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in proxy.HOP_HEADERS and k.lower() != "host"
                }
                with proxy._lock:
                    proxy.forwarded.append((self.command, self.path, headers))
                # One upstream connection per request, closed after it, so no server thread
                # (and its database session) outlives the test.
                upstream = proxy._session.request(
                    self.command,
                    proxy.upstream + self.path,
                    data=body,
                    headers={**headers, "Connection": "close"},
                )
                with proxy._lock:
                    lose = proxy._lose.get(self.command, 0)
                    if lose:
                        proxy._lose[self.command] = lose - 1
                if lose:
                    self.close_connection = True  # the answer never comes back
                    return
                kept = {
                    k: v for k, v in upstream.headers.items() if k.lower() not in proxy.HOP_HEADERS
                }
                self._reply(upstream.status_code, kept, upstream.content)

            def _reply(self, status: int, headers: dict[str, str], content: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, format, *args) -> None:
                pass

        return Handler


@pytest.fixture
def proxy(base_url) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(base_url)
    yield flaky
    flaky.close()


@dataclass
class Shop:
    """A small marketplace made over the API: one of each partner, a plan, a product."""

    ops: LiveCommerceClient
    finance: LiveCommerceClient
    host: LiveCommerceClient
    fulfiller: LiveCommerceClient
    brand: LiveCommerceClient
    creator: LiveCommerceClient
    product: dict

    def order(self, quantity: int = 1, **fields) -> dict:
        """A new order from the host app for ``quantity`` of the product."""
        lines = [{"product": self.product["id"], "quantity": quantity}]
        return self.host.orders.create(lines=lines, **fields)


@pytest.fixture
def shop(ops, partner_client, finance_key, make_client) -> Shop:
    fulfiller = partner_client("fulfillment")
    brand = partner_client("brand", fulfillment_partner=fulfiller.partner["id"])
    host = partner_client("host_app", brand_access="open")
    creator = partner_client("creator")
    ops.commission_plans.create(
        name="Standard", platform_rate_bps=800, creator_rate_bps=500, fulfillment_rate_bps=300
    )
    product = fulfiller.products.create(
        brand=brand.partner["id"],
        sku="SKU-1",
        title="Lipstick",
        price="19.99",
        currency="USD",
        inventory=100,
    )
    return Shop(
        ops=ops,
        finance=make_client(finance_key),
        host=host,
        fulfiller=fulfiller,
        brand=brand,
        creator=creator,
        product=product,
    )
