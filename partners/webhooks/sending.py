"""One HTTP POST of a webhook, to the address that passed the URL policy.

``requests`` would resolve the host again when it connects; the adapter here connects to the
address already checked instead, while the Host header, TLS SNI and certificate check still use
the host name. No proxies from the environment, no redirects (a redirect could point anywhere),
and the answer is read only as far as a short snippet, within the timeout.

Each worker process (each thread, under a threaded pool) keeps one session per (scheme, host,
port, checked address), so consecutive sends to an endpoint reuse its kept-alive connection
instead of opening one per send. The key holds the address the URL policy passed for this very
send: a pooled connection can only lead to an address checked now, and when DNS answers
differently the send gets another session, connected to the new (checked) address. A response
not read to its end closes its connection rather than returning it to the pool.
"""

import email.utils
import os
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from partners.webhooks.url_policy import CheckedURL

RESPONSE_SNIPPET_CHARS = 1000
USER_AGENT = "livecommerce-webhooks/1.0"


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    latency_ms: int
    error: str
    response_body: str
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _pinned(base: type, address: str) -> type:
    class PinnedConnection(base):
        def _new_conn(self) -> socket.socket:
            try:
                return urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
            except OSError as exc:
                raise NewConnectionError(self, f"Failed to connect to {self.host}: {exc}") from exc

    return PinnedConnection


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to one given IP address whatever the URL's host resolves to now."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        http_pool = type(
            "PinnedHTTPPool",
            (HTTPConnectionPool,),
            {"ConnectionCls": _pinned(HTTPConnection, self.address)},
        )
        https_pool = type(
            "PinnedHTTPSPool",
            (HTTPSConnectionPool,),
            {"ConnectionCls": _pinned(HTTPSConnection, self.address)},
        )
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}


# Sessions kept per thread; the oldest is closed past this many (one per endpoint address).
MAX_SESSIONS = 64
_local = threading.local()


def _sessions() -> OrderedDict:
    sessions = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = OrderedDict()
    return sessions


def _forget_sessions() -> None:
    # A forked child must not share its parent's sockets: it starts with no session.
    _local.__dict__.clear()


os.register_at_fork(after_in_child=_forget_sessions)


def _session_for(target: CheckedURL) -> requests.Session:
    """The kept session for the target's (scheme, host, port, first checked address)."""
    key = (target.scheme, target.host, target.port, target.addresses[0])
    sessions = _sessions()
    session = sessions.get(key)
    if session is not None:
        sessions.move_to_end(key)
        return session
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment may route around the URL policy
    session.mount(f"{target.scheme}://", PinnedAddressAdapter(target.addresses[0]))
    sessions[key] = session
    while len(sessions) > MAX_SESSIONS:
        _, oldest = sessions.popitem(last=False)
        oldest.close()
    return session


def close_sessions() -> None:
    """Close every session this thread keeps (tests; a worker closes them when it exits)."""
    sessions = _sessions()
    while sessions:
        _, session = sessions.popitem()
        session.close()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.Timeout):
        return "timeout waiting for the response"
    if isinstance(exc, requests.ConnectionError):
        reason = str(exc)
        if "refused" in reason.lower():
            return "connection refused"
        return f"connection error: {reason}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


def post(*, target: CheckedURL, body: str, headers: dict[str, str], timeout: float) -> SendResult:
    """POST ``body`` to the checked URL at its first checked address; never raises for HTTP.

    The connection is a kept one to that same address when this process sent there before.
    """
    started = time.monotonic()
    deadline = started + timeout * 2
    session = _session_for(target)
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        response = session.post(
            target.url,
            data=body.encode(),
            headers=all_headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        )
    except requests.RequestException as exc:
        return SendResult(None, elapsed_ms(), _describe(exc), "")
    try:
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=512):
                chunks.append(chunk)
                size += len(chunk)
                if size >= RESPONSE_SNIPPET_CHARS or time.monotonic() > deadline:
                    break
        except requests.RequestException:
            pass  # the status line arrived; a body cut short does not change the outcome
        snippet = b"".join(chunks).decode("utf-8", errors="replace")[:RESPONSE_SNIPPET_CHARS]
        status_code = response.status_code
        error = ""
        if 300 <= status_code < 400:
            error = "redirects are not followed"
        elif not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
        retry_after = None
        if status_code in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return SendResult(status_code, elapsed_ms(), error, snippet, retry_after)
    finally:
        # Read to its end, the connection goes back to the pool; cut short, it is closed.
        response.close()
