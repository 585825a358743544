"""Typed errors: every error response becomes an ``ApiError`` subclass carrying the contract's
``type`` and ``errors`` (``[{"code", "detail", "attr"}]``)."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import NotRequired, TypedDict

import requests

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
