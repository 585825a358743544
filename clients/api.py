"""A small Python client for the live-commerce partner API, over ``requests``.

What a partner app needs from every call, done once here:

- ``Authorization: Bearer <key>`` on every request.
- An ``Idempotency-Key`` (a uuid4) on every ``POST``; the same key goes out again on each retry
  of that POST, so a response lost on the way back never makes a second order.
- Retries with exponential backoff and jitter on network errors, on ``429`` (waiting at least
  what ``Retry-After`` says), on ``5xx`` and on ``409 idempotency_key_in_use`` (the first attempt
  with the key is still running on the server).
- Cursor iteration: ``iterate(path, **filters)`` follows ``next`` until the list ends.
- Typed errors: every error response becomes an ``ApiError`` subclass carrying the contract's
  ``type`` and ``errors`` (``[{"code", "detail", "attr"}]``).

Amounts stay decimal strings as the API sends them; on the way in a ``Decimal``, ``int`` or
``str`` is accepted and a ``float`` is refused, because a float cannot hold ``19.99``.

It imports nothing of the server, only ``requests`` and the standard library.
"""

from __future__ import annotations

import email.utils
import json as _json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NotRequired, TypedDict
from urllib.parse import urlsplit, urlunsplit

import requests

API_PREFIX = "/api/v1"
USER_AGENT = "livecommerce-python/1.0"

Amount = str | Decimal | int


# --- Errors ----------------------------------------------------------------------------------


class LiveCommerceError(Exception):
    """Anything this client raises."""


class NetworkError(LiveCommerceError):
    """The service could not be reached, or the connection broke, on every attempt."""


class ErrorItem(TypedDict):
    code: str
    detail: str
    attr: str | None
    available: NotRequired[int]  # insufficient_inventory: units of the line's product left


class ApiError(LiveCommerceError):
    """The service answered with an error status; the body is the contract's error format."""

    def __init__(
        self,
        status: int,
        type: str,
        errors: list[ErrorItem],
        *,
        response: requests.Response | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.errors = errors
        self.response = response
        first = errors[0] if errors else {"code": "", "detail": "", "attr": None}
        self.code: str = first["code"]
        self.detail: str = first["detail"]
        self.attr: str | None = first.get("attr")
        super().__init__(f"{status} {self.code}: {self.detail}")

    @property
    def codes(self) -> list[str]:
        return [error["code"] for error in self.errors]


class ValidationError(ApiError):
    """400: the request's shape or values are wrong; ``attr`` names the field."""


class AuthenticationError(ApiError):
    """401: no key, or the key is unknown, revoked or expired."""


class PermissionDenied(ApiError):
    """403: this caller may never do this (or its partner is suspended)."""


class NotFound(ApiError):
    """404: no such object, or it belongs to another partner."""


class Conflict(ApiError):
    """409: the object's state forbids it (``invalid_transition``, ``insufficient_inventory``)."""


class Unprocessable(ApiError):
    """422: understood but refused (``no_commission_plan``, ``idempotency_key_reused``...)."""


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` is how long the service asked to wait (seconds)."""

    retry_after: float | None = None


class ServerError(ApiError):
    """5xx: the service failed; safe to retry a POST with the same idempotency key."""


_ERROR_CLASSES: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    429: RateLimited,
}


def error_from_response(response: requests.Response) -> ApiError:
    """The typed error for an error response, tolerant of bodies that are not the contract's."""
    status = response.status_code
    error_type = "server_error" if status >= 500 else "client_error"
    errors: list[ErrorItem] = []
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        error_type = body.get("type") or error_type
        errors = [
            {
                "code": str(item.get("code", "")),
                "detail": str(item.get("detail", "")),
                "attr": item.get("attr"),
                **({"available": item["available"]} if "available" in item else {}),
            }
            for item in body["errors"]
            if isinstance(item, dict)
        ]
    if not errors:
        # A proxy's HTML 502 or similar: keep the status and a short excerpt.
        errors = [{"code": f"http_{status}", "detail": response.text[:200], "attr": None}]
    cls = ServerError if status >= 500 else _ERROR_CLASSES.get(status, ApiError)
    error = cls(status, error_type, errors, response=response)
    if isinstance(error, RateLimited):
        error.retry_after = retry_after_seconds(response)
    return error


def retry_after_seconds(response: requests.Response) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# --- Retries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryInfo:
    """What ``on_retry`` hears before the client sleeps and tries again."""

    method: str
    url: str
    attempt: int  # 1 for the first retry
    delay: float  # seconds the client is about to sleep
    status: int | None  # the response status, or None after a network error
    code: str | None  # the first error code of the response, if any
    retry_after: float | None  # what Retry-After asked for, if anything
    idempotency_key: str | None
    exception: Exception | None = None


# --- Shapes the client returns (the contract's, as JSON) -------------------------------------


class OrderLine(TypedDict):
    id: str
    product: str
    sku: str
    quantity: int
    unit_price: str
    subtotal: str
    refunded_quantity: int


class Order(TypedDict):
    id: str
    status: str
    host_app: str
    brand: str
    live_session: str | None
    creator: str | None
    currency: str
    subtotal: str
    shipping_amount: str
    tax_amount: str
    total: str
    refunded_amount: str
    created: str
    lines: list[OrderLine]


class LedgerLine(TypedDict):
    account: str
    partner: str | None
    debit: str
    credit: str


class LedgerEntry(TypedDict):
    id: str
    kind: str
    order: str | None
    created: str
    currency: str
    lines: list[LedgerLine]


class Balance(TypedDict):
    currency: str
    pending: str
    available: str
    paid_out: str


class Event(TypedDict):
    id: str
    type: str
    created: str
    sequence: int
    data: dict[str, Any]


JSON = dict[str, Any]


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


def _decode(response: requests.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    if "json" in response.headers.get("Content-Type", ""):
        return response.json()
    return response.text


def _query(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _param(value) for name, value in params.items() if value is not None}


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("pass timezone-aware datetimes (the API speaks UTC)")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_param(item) for item in value]
    if isinstance(value, Decimal | float):
        return format_amount(value)
    return value


def format_amount(value: Amount) -> str:
    """An amount as the API's decimal string. Floats are refused: they cannot hold 19.99."""
    if isinstance(value, bool | float):
        raise TypeError("amounts are Decimal, int or str, never float")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not an amount: {value}")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"not an amount: {value!r}")


def _body(**fields: Any) -> JSON:
    """A request body without the fields left as ``None``."""
    return {name: value for name, value in fields.items() if value is not None}


def _when(value: datetime | date | str | None) -> str | None:
    return None if value is None else _param(value)


# --- Resources -------------------------------------------------------------------------------


class _Resource:
    path = ""

    def __init__(self, client: LiveCommerceClient) -> None:
        self._client = client

    def _at(self, object_id: str, *rest: str) -> str:
        return "/".join([self.path, object_id, *rest])


class Partners(_Resource):
    """Partners and their keys (``ops`` writes; staff read)."""

    path = "/partners"

    def create(
        self,
        *,
        kind: str,
        name: str,
        email: str | None = None,
        status: str | None = None,
        brand_access: str | None = None,
        fulfillment_partner: str | None = None,
        payout_schedule: str | None = None,
        minimum_payout: Amount | None = None,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> JSON:
        body = _body(
            kind=kind,
            name=name,
            email=email,
            status=status,
            brand_access=brand_access,
            fulfillment_partner=fulfillment_partner,
            payout_schedule=payout_schedule,
            minimum_payout=None if minimum_payout is None else format_amount(minimum_payout),
            **extra,
        )
        return self._client.post(self.path, body, idempotency_key=idempotency_key)

    def list(self, **filters: Any) -> Iterator[JSON]:
        return self._client.iterate(self.path, **filters)

    def get(self, partner_id: str) -> JSON:
        return self._client.get(self._at(partner_id))

    def update(self, partner_id: str, **fields: Any) -> JSON:
        if "minimum_payout" in fields and fields["minimum_payout"] is not None:
            fields["minimum_payout"] = format_amount(fields["minimum_payout"])
        return self._client.patch(self._at(partner_id), fields)

    def suspend(self, partner_id: str) -> JSON:
        return self.update(partner_id, status="suspended")

    def reactivate(self, partner_id: str) -> JSON:
        return self.update(partner_id, status="active")

    def enrollments(self, host_app_id: str) -> list[JSON]:
        return list(self._client.iterate(self._at(host_app_id, "enrollments")))

    def enroll(self, host_app_id: str, brand_id: str) -> JSON:
        return self._client.post(self._at(host_app_id, "enrollments"), {"brand": brand_id})

    def unenroll(self, host_app_id: str, brand_id: str) -> None:
        self._client.delete(self._at(host_app_id, "enrollments"), brand=brand_id)

    def api_keys(self, partner_id: str) -> list[JSON]:
        return list(self._client.iterate(self._at(partner_id, "api-keys")))

    def create_api_key(self, partner_id: str, *, name: str | None = None) -> JSON:
        """A new key for the partner: ``{"id", "key", "prefix", "created"}``; ``key`` shown once."""
        return self._client.post(self._at(partner_id, "api-keys"), _body(name=name))


class ApiKeys(_Resource):
    path = "/api-keys"

    def get(self, key_id: str) -> JSON:
        return self._client.get(self._at(key_id))

    def revoke(self, key_id: str) -> None:
        self._client.delete(self._at(key_id))


class CommissionPlans(_Resource):
    """Commission plans (``ops`` writes, ``finance`` reads). Rates in basis points."""

    path = "/commission-plans"

    def create(
        self,
        *,
        platform_rate_bps: int,
        creator_rate_bps: int = 0,
        fulfillment_rate_bps: int = 0,
        fulfillment_fee_fixed: Amount | None = None,
        name: str | None = None,
        host_app: str | None = None,
        brand: str | None = None,
        category: str | None = None,
        currency: str | None = None,
        effective_from: datetime | str | None = None,
        effective_to: datetime | str | None = None,
        **extra: Any,
    ) -> JSON:
        body = _body(
            name=name,
            platform_rate_bps=platform_rate_bps,
            creator_rate_bps=creator_rate_bps,
            fulfillment_rate_bps=fulfillment_rate_bps,
            fulfillment_fee_fixed=None
            if fulfillment_fee_fixed is None
            else format_amount(fulfillment_fee_fixed),
            host_app=host_app,
            brand=brand,
            category=category,
            currency=currency,
            effective_from=_when(effective_from),
            effective_to=_when(effective_to),
            **extra,
        )
        return self._client.post(self.path, body)

    def list(self, **filters: Any) -> Iterator[JSON]:
        return self._client.iterate(self.path, **filters)

    def get(self, plan_id: str) -> JSON:
        return self._client.get(self._at(plan_id))

    def update(self, plan_id: str, **fields: Any) -> JSON:
        return self._client.patch(self._at(plan_id), fields)


class Products(_Resource):
    """The catalog (a fulfillment partner for the brands it fulfils, or the brand itself)."""

    path = "/products"

    def create(
        self,
        *,
        brand: str,
        sku: str,
        title: str,
        price: Amount,
        currency: str,
        inventory: int = 0,
        category: str | None = None,
        **extra: Any,
    ) -> JSON:
        body = _body(
            brand=brand,
            sku=sku,
            title=title,
            category=category,
            price=format_amount(price),
            currency=currency,
            inventory=inventory,
            **extra,
        )
        return self._client.post(self.path, body)

    def list(self, **filters: Any) -> Iterator[JSON]:
        return self._client.iterate(self.path, **filters)

    def get(self, product_id: str) -> JSON:
        return self._client.get(self._at(product_id))

    def update(self, product_id: str, **fields: Any) -> JSON:
        if fields.get("price") is not None:
            fields["price"] = format_amount(fields["price"])
        return self._client.patch(self._at(product_id), fields)


class LiveSessions(_Resource):
    """Live sessions (a host app or a fulfillment partner produces them)."""

    path = "/live-sessions"

    def create(
        self,
        *,
        title: str,
        scheduled_start: datetime | str,
        creator: str | None = None,
        products: list[str] | None = None,
        host_apps: list[str] | None = None,
        **extra: Any,
    ) -> JSON:
        body = _body(
            creator=creator,
            title=title,
            scheduled_start=_when(scheduled_start),
            products=products,
            host_apps=host_apps,
            **extra,
        )
        return self._client.post(self.path, body)

    def list(self, **filters: Any) -> Iterator[JSON]:
        return self._client.iterate(self.path, **filters)

    def get(self, session_id: str) -> JSON:
        return self._client.get(self._at(session_id))

    def start(self, session_id: str) -> JSON:
        return self._client.post(self._at(session_id, "start"))

    def end(self, session_id: str) -> JSON:
        return self._client.post(self._at(session_id, "end"))

    def update(self, session_id: str, **fields: Any) -> JSON:
        """``live_prices`` (product id -> amount; replaces them all) and/or ``hold_seconds``."""
        if fields.get("live_prices") is not None:
            fields["live_prices"] = {
                product: format_amount(price) for product, price in fields["live_prices"].items()
            }
        return self._client.patch(self._at(session_id), fields)

    def feed(
        self,
        session_id: str,
        *,
        last_event_id: str | None = None,
        feed_root: str | None = None,
        should_stop: Callable[[], bool] | None = None,
        read_timeout: float = 60.0,
    ) -> Iterator[tuple[str, str, dict]]:
        """Follow the show's live feed (Server-Sent Events): yields ``(id, event, data)``.

        Reconnects after a dropped connection or the server closing the stream, sending
        ``Last-Event-ID`` so nothing is missed, until ``live_session.ended`` (or until
        ``should_stop()`` says so, checked after each message). ``feed_root`` is where the feed
        is served when that is not the API's own address (an ASGI process of its own).
        """
        root = (feed_root.rstrip("/") + API_PREFIX) if feed_root else self._client.api_root
        url = f"{root}{self._at(session_id, 'feed')}"
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if self._client.key is not None:
                headers["Authorization"] = f"Bearer {self._client.key}"
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            try:
                with requests.get(
                    url, headers=headers, stream=True, timeout=(5, read_timeout)
                ) as response:
                    if response.status_code != 200:
                        raise error_from_response(response)
                    failures = 0
                    fields: dict[str, str] = {}
                    for line in response.iter_lines(decode_unicode=True):
                        if line:
                            if not line.startswith(":"):
                                name, _, value = line.partition(": ")
                                fields[name] = value
                            continue
                        if "event" in fields:
                            last_event_id = fields.get("id", last_event_id)
                            yield last_event_id or "", fields["event"], _json.loads(fields["data"])
                            if fields["event"] == "live_session.ended":
                                return
                            if should_stop is not None and should_stop():
                                return
                        fields = {}
            except requests.RequestException:
                failures += 1
                if failures > self._client.max_retries:
                    raise
                time.sleep(min(self._client.max_backoff, self._client.backoff * 2**failures))
            if should_stop is not None and should_stop():
                return


class Orders(_Resource):
    """Orders and the actions that move them through their statuses."""

    path = "/orders"

    def create(
        self,
        *,
        lines: list[dict[str, Any]],
        live_session: str | None = None,
        buyer: dict[str, str] | None = None,
        shipping_address: dict[str, Any] | None = None,
        shipping_amount: Amount | None = None,
        tax_amount: Amount | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """``POST /orders`` (host app): ``lines=[{"product": id, "quantity": n}]``.

        Prices come from the catalog; ``409 insufficient_inventory`` when it would oversell.
        """
        body = _body(
            lines=lines,
            live_session=live_session,
            buyer=buyer,
            shipping_address=shipping_address,
            shipping_amount=None if shipping_amount is None else format_amount(shipping_amount),
            tax_amount=None if tax_amount is None else format_amount(tax_amount),
        )
        return self._client.post(self.path, body, idempotency_key=idempotency_key)

    def list(self, **filters: Any) -> Iterator[Order]:
        return self._client.iterate(self.path, **filters)

    def get(self, order_id: str) -> Order:
        return self._client.get(self._at(order_id))

    def pay(self, order_id: str, *, amount: Amount, payment_reference: str) -> Order:
        body = {"amount": format_amount(amount), "payment_reference": payment_reference}
        return self._client.post(self._at(order_id, "pay"), body)

    def cancel(self, order_id: str, *, reason: str | None = None) -> Order:
        return self._client.post(self._at(order_id, "cancel"), _body(reason=reason))

    def accept(self, order_id: str) -> Order:
        return self._client.post(self._at(order_id, "accept"))

    def ship(self, order_id: str, *, carrier: str, tracking_number: str) -> Order:
        body = {"carrier": carrier, "tracking_number": tracking_number}
        return self._client.post(self._at(order_id, "ship"), body)

    def deliver(self, order_id: str) -> Order:
        return self._client.post(self._at(order_id, "deliver"))

    def refund(
        self,
        order_id: str,
        *,
        lines: list[dict[str, Any]] | None = None,
        amount: Amount | None = None,
        reason: str | None = None,
        restock: bool | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """``POST /orders/{id}/refunds``: ``lines=[{"line", "quantity"}]`` or an ``amount``."""
        body = _body(
            lines=lines,
            amount=None if amount is None else format_amount(amount),
            reason=reason,
            restock=restock,
        )
        return self._client.post(
            self._at(order_id, "refunds"), body, idempotency_key=idempotency_key
        )

    def refunds(self, order_id: str) -> list[JSON]:
        """The order's refunds so far."""
        return list(self._client.iterate(self._at(order_id, "refunds")))

    def events(self, order_id: str) -> list[JSON]:
        """The order's history, oldest first as the service lists it."""
        return list(self._client.iterate(self._at(order_id, "events")))

    def breakdown(self, order_id: str) -> JSON:
        """Where the order's money went: per line shares, ``totals`` net of refunds."""
        return self._client.get(self._at(order_id, "breakdown"))


class Ledger(_Resource):
    path = "/ledger/entries"

    def entries(self, **filters: Any) -> Iterator[LedgerEntry]:
        """``GET /ledger/entries`` (finance: everything; a partner: its own accounts)."""
        return self._client.iterate(self.path, **filters)


class Settlements(_Resource):
    """Settlement runs and payouts (``finance``; a payee reads its own)."""

    path = "/settlements"

    def run(self, *, period_end: date | str, currency: str) -> JSON:
        """Start a run (``202``); a period that already ran returns the same run."""
        body = {"period_end": _when(period_end), "currency": currency}
        return self._client.post(self._at("run"), body)

    def list(self, **filters: Any) -> Iterator[JSON]:
        return self._client.iterate(self.path, **filters)

    def get(self, settlement_id: str) -> JSON:
        return self._client.get(self._at(settlement_id))

    def lines(self, settlement_id: str, **filters: Any) -> Iterator[JSON]:
        return self._client.iterate(self._at(settlement_id, "lines"), **filters)

    def lines_csv(self, settlement_id: str) -> str:
        return self._client.get_text(self._at(settlement_id, "lines"), format="csv")

    def mark_paid(self, settlement_id: str, *, payout_reference: str) -> JSON:
        body = {"payout_reference": payout_reference}
        return self._client.post(self._at(settlement_id, "mark-paid"), body)

    def mark_failed(self, settlement_id: str, *, reason: str) -> JSON:
        """The payout bounced: the settlement's funds return to ``available``."""
        return self._client.post(self._at(settlement_id, "mark-failed"), {"reason": reason})

    def runs(self, **filters: Any) -> Iterator[JSON]:
        """``GET /settlement-runs``: the runs, to follow one started in the background."""
        return self._client.iterate("/settlement-runs", **filters)

    def get_run(self, run_id: str) -> JSON:
        return self._client.get(f"/settlement-runs/{run_id}")


class Reports(_Resource):
    path = "/reports/commissions"

    def commissions(
        self,
        *,
        date_from: date | str,
        date_to: date | str,
        currency: str,
        group_by: str,
    ) -> JSON:
        """``{"group_by", "currency", "date_from", "date_to", "rows", "totals"}``."""
        return self._client.get(
            self.path, date_from=date_from, date_to=date_to, currency=currency, group_by=group_by
        )

    def reconciliation(
        self, *, date_from: date | str, date_to: date | str, currency: str | None = None
    ) -> JSON:
        """``GET /reports/reconciliation``: the ledger against the orders over a period."""
        return self._client.get(
            "/reports/reconciliation", date_from=date_from, date_to=date_to, currency=currency
        )

    def commissions_csv(
        self, *, date_from: date | str, date_to: date | str, currency: str, group_by: str
    ) -> str:
        return self._client.get_text(
            self.path,
            date_from=date_from,
            date_to=date_to,
            currency=currency,
            group_by=group_by,
            format="csv",
        )


class WebhookEndpoints(_Resource):
    """Where the service sends a partner's events; ``secret`` shown at creation and rotation."""

    path = "/webhook-endpoints"

    def create(self, *, url: str, events: list[str] | None = None, **extra: Any) -> JSON:
        return self._client.post(self.path, _body(url=url, events=events or ["*"], **extra))

    def list(self, **filters: Any) -> Iterator[JSON]:
        return self._client.iterate(self.path, **filters)

    def get(self, endpoint_id: str) -> JSON:
        return self._client.get(self._at(endpoint_id))

    def update(self, endpoint_id: str, **fields: Any) -> JSON:
        return self._client.patch(self._at(endpoint_id), fields)

    def disable(self, endpoint_id: str) -> JSON:
        return self.update(endpoint_id, status="disabled")

    def enable(self, endpoint_id: str) -> JSON:
        return self.update(endpoint_id, status="enabled")

    def delete(self, endpoint_id: str) -> None:
        self._client.delete(self._at(endpoint_id))

    def rotate_secret(self, endpoint_id: str, *, grace_period_seconds: int | None = None) -> JSON:
        """A new ``secret``; the old one keeps signing too for the grace period."""
        body = _body(grace_period_seconds=grace_period_seconds)
        return self._client.post(self._at(endpoint_id, "rotate-secret"), body)

    def deliveries(self, endpoint_id: str, **filters: Any) -> Iterator[JSON]:
        return self._client.iterate(self._at(endpoint_id, "deliveries"), **filters)


class WebhookDeliveries(_Resource):
    path = "/webhook-deliveries"

    def get(self, delivery_id: str) -> JSON:
        return self._client.get(self._at(delivery_id))

    def retry(self, delivery_id: str) -> JSON:
        return self._client.post(self._at(delivery_id, "retry"))


class Events(_Resource):
    """The events a partner may see, to catch up after an outage."""

    path = "/events"

    def list(self, **filters: Any) -> Iterator[Event]:
        return self._client.iterate(self.path, **filters)

    def get(self, event_id: str) -> Event:
        return self._client.get(self._at(event_id))
