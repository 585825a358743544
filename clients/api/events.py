"""The resources of events: webhook endpoints, their deliveries, the event list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from clients.api.encoding import _body
from clients.api.resources import _Resource
from clients.api.shapes import JSON, Event


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
