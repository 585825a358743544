"""The client: authentication, idempotency keys, retries and cursor iteration, done once."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from clients.api.encoding import API_PREFIX, USER_AGENT, _decode, _query
from clients.api.errors import (
    ApiError,
    NetworkError,
    RateLimited,
    error_from_response,
    retry_after_seconds,
)
from clients.api.events import Events, WebhookDeliveries, WebhookEndpoints
from clients.api.orders import Ledger, Orders, Reports, Settlements
from clients.api.resources import ApiKeys, CommissionPlans, LiveSessions, Partners, Products
from clients.api.shapes import JSON, Balance, RetryInfo

# --- The client ------------------------------------------------------------------------------


class LiveCommerceClient:
    """One API key's view of the service.

    ``base_url`` is the service's root (``http://127.0.0.1:8000``) or its API root
    (``.../api/v1``); paths passed to ``get``/``post``/... are relative to the API root
    (``"/orders"``). Resource helpers hang off the client: ``client.orders.create(...)``,
    ``client.partners.list()``, ``client.settlements.run(...)``.
    """

    def __init__(
        self,
        base_url: str,
        key: str | None,
        timeout: float = 10,
        max_retries: int = 4,
        *,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        session: requests.Session | None = None,
        on_retry: Callable[[RetryInfo], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        root = base_url.rstrip("/")
        if not root.endswith(API_PREFIX):
            root += API_PREFIX
        self.api_root = root
        self.key = key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.on_retry = on_retry
        self.sleep = sleep
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self.last_response: requests.Response | None = None

        self.partners = Partners(self)
        self.api_keys = ApiKeys(self)
        self.commission_plans = CommissionPlans(self)
        self.products = Products(self)
        self.live_sessions = LiveSessions(self)
        self.orders = Orders(self)
        self.ledger = Ledger(self)
        self.settlements = Settlements(self)
        self.reports = Reports(self)
        self.webhook_endpoints = WebhookEndpoints(self)
        self.webhook_deliveries = WebhookDeliveries(self)
        self.events = Events(self)

    def __repr__(self) -> str:
        return f"<LiveCommerceClient {self.api_root}>"

    def __enter__(self) -> LiveCommerceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this client's connections now.

        ``Session.close()`` alone leaves a pooled keep-alive connection open while anything
        (``last_response``) still refers to its pool, since urllib3 2.x no longer closes pools
        when it forgets them; a server would keep that connection's worker busy.
        """
        for adapter in self.session.adapters.values():
            pools = getattr(getattr(adapter, "poolmanager", None), "pools", None)
            for pool_key in list(pools.keys()) if pools is not None else []:
                pool = pools.get(pool_key)
                if pool is not None:
                    pool.close()
        self.session.close()
        self.last_response = None

    def with_key(self, key: str) -> LiveCommerceClient:
        """Another client on the same service with another key (and the same settings)."""
        return LiveCommerceClient(
            self.api_root,
            key,
            timeout=self.timeout,
            max_retries=self.max_retries,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            max_retry_after=self.max_retry_after,
            on_retry=self.on_retry,
            sleep=self.sleep,
        )

    # --- HTTP verbs ---

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, *, idempotency_key: str | None = None) -> Any:
        return self.request("POST", path, json=json, idempotency_key=idempotency_key)

    def patch(self, path: str, json: Any) -> Any:
        return self.request("PATCH", path, json=json)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params=params)

    def get_text(self, path: str, **params: Any) -> str:
        """A non-JSON answer (``?format=csv``) as text."""
        return self.request("GET", path, params=params, raw=True, accept="*/*").text

    def iterate(self, path: str, **filters: Any) -> Iterator[Any]:
        """Every item of a list, following ``next`` from page to page.

        Filters are the list's query parameters (``status="paid"``, ``created_after=datetime``,
        ``page_size=200``); ``None`` values are left out. A list the service returns unpaginated
        (a plain JSON array) is iterated as it is.
        """
        url: str | None = path
        params: Mapping[str, Any] | None = filters
        while url:
            page = self.request("GET", url, params=params)
            if isinstance(page, list):
                yield from page
                return
            yield from page["results"]
            url = page.get("next")
            params = None  # ``next`` carries the cursor and the filters

    # --- The one place requests go out ---

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        raw: bool = False,
        accept: str = "application/json",
    ) -> Any:
        """Send one API call, retrying what is safe to retry, and decode the answer.

        Returns the decoded JSON (``None`` for an empty answer), or the ``requests.Response``
        itself when ``raw``. Raises an ``ApiError`` subclass for an error status and
        ``NetworkError`` when the service could not be reached on any attempt.
        """
        method = method.upper()
        url = self._url(path)
        headers = {"Accept": accept}
        if self.key is not None:
            headers["Authorization"] = f"Bearer {self.key}"
        if method == "POST":
            # One key per logical call, reused on each of its retries.
            idempotency_key = idempotency_key or str(uuid.uuid4())
            headers["Idempotency-Key"] = idempotency_key
        query = _query(params) if params else None
        response_was_lost = False
        attempt = 0
        while True:
            try:
                response = self.session.request(
                    method,
                    url,
                    params=query,
                    json=json,
                    headers=headers,
                    timeout=self.timeout,
                )
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                if attempt >= self.max_retries:
                    raise NetworkError(
                        f"{method} {url}: no answer after {attempt + 1} attempts: {exc}"
                    ) from exc
                attempt += 1
                response_was_lost = True
                self._pause(method, url, attempt, None, idempotency_key, exc)
                continue

            self.last_response = response
            if response.status_code < 400:
                return response if raw else _decode(response)
            if method == "DELETE" and response.status_code == 404 and response_was_lost:
                # The first DELETE went through and only its answer was lost.
                return None
            error = error_from_response(response)
            if attempt < self.max_retries and self._should_retry(error):
                attempt += 1
                self._pause(method, url, attempt, error, idempotency_key, None)
                continue
            raise error

    # --- internals ---

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            # A ``next`` link: keep its path and query, on this client's host, so a service
            # behind a proxy that does not know its public name still pages correctly.
            base = urlsplit(self.api_root)
            link = urlsplit(path)
            return urlunsplit((base.scheme, base.netloc, link.path, link.query, ""))
        return f"{self.api_root}/{path.lstrip('/')}"

    def _should_retry(self, error: ApiError) -> bool:
        if isinstance(error, RateLimited):
            # Honour Retry-After, unless it asks for longer than this client will wait.
            return error.retry_after is None or error.retry_after <= self.max_retry_after
        if error.status >= 500:
            return True
        return error.status == 409 and error.code == "idempotency_key_in_use"

    def _pause(
        self,
        method: str,
        url: str,
        attempt: int,
        error: ApiError | None,
        idempotency_key: str | None,
        exception: Exception | None,
    ) -> None:
        # Exponential backoff with "equal jitter": half fixed, half random, so clients that
        # failed together do not come back together.
        ceiling = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        retry_after = None
        if error is not None:
            if error.response is not None:  # (an error Response is falsy: compare to None)
                retry_after = retry_after_seconds(error.response)
            if retry_after is not None:
                delay = retry_after + random.uniform(0, self.backoff)
        if self.on_retry is not None:
            self.on_retry(
                RetryInfo(
                    method=method,
                    url=url,
                    attempt=attempt,
                    delay=delay,
                    status=error.status if error else None,
                    code=error.code if error else None,
                    retry_after=retry_after,
                    idempotency_key=idempotency_key,
                    exception=exception,
                )
            )
        self.sleep(delay)

    # --- who am I ---

    def me(self) -> JSON:
        """``GET /me``: the caller (``type``, ``role``, ``partner``, ``api_key``)."""
        return self.get("/me")

    def balances(self, *, partner: str | None = None) -> list[Balance]:
        """``GET /balances``: per currency ``pending``, ``available``, ``paid_out``.

        Staff name the partner; a partner sees its own.
        """
        return list(self.iterate("/balances", partner=partner))
