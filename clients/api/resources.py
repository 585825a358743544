"""The resources of partners and their catalog: partners, keys, plans, products, live sessions."""

from __future__ import annotations

import json as _json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests

from clients.api.encoding import API_PREFIX, _body, _when, format_amount
from clients.api.errors import error_from_response
from clients.api.shapes import JSON, Amount

if TYPE_CHECKING:
    from clients.api.client import LiveCommerceClient


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
