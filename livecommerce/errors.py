"""One application error class, one exception handler, and every error code in one place.

Every error the API sends has the contract's shape::

    {"type": "validation_error" | "client_error" | "server_error",
     "errors": [{"code": str, "detail": str, "attr": str | null}]}

drf-standardized-errors produces that shape for DRF's own exceptions; ``AppError`` carries the
domain's codes (``invalid_transition``, ``insufficient_inventory``, ...) through the same handler.
"""

import contextlib
import logging
import sys

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_standardized_errors.handler import ExceptionHandler as BaseExceptionHandler
from rest_framework import exceptions, status

logger = logging.getLogger(__name__)

# Domain error codes with the status each is sent with, so the docs can list them.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "idempotency_key_reused": (422, "The Idempotency-Key was used before with another body."),
    "idempotency_key_in_use": (409, "A request with this Idempotency-Key is still running."),
    "idempotency_key_invalid": (400, "The Idempotency-Key header is empty or too long."),
    "service_unavailable": (
        503,
        "The database or the broker is unreachable for a moment; retry after Retry-After.",
    ),
    "request_too_large": (413, "The request body is larger than the service accepts."),
    "invalid_transition": (409, "The object's status does not allow this action."),
    "insufficient_inventory": (409, "Not enough inventory to reserve for the order."),
    "order_expired": (409, "The order was not paid before its expires_at; its hold has ended."),
    "refund_exceeds_paid": (409, "Refunds would exceed what was paid."),
    "no_commission_plan": (422, "No commission plan is in force for this order."),
    "amount_mismatch": (422, "The payment amount is not the order total."),
    "brand_not_enrolled": (422, "The host app may not sell this brand."),
    "brand_suspended": (409, "The brand is suspended; its products cannot be ordered."),
    "partner_suspended": (409, "The partner is suspended; nothing is sent to it."),
    "mixed_order": (422, "An order sells one brand's products in one currency."),
    "invalid_reference": (400, "A referenced object does not exist or is not visible."),
    "invalid_amount": (400, "The amount is not a valid non-negative decimal."),
    "too_many_decimal_places": (400, "The amount has more decimal places than its currency."),
    "negative_amount": (400, "Amounts may not be negative."),
    "invalid_currency": (400, "Not an ISO 4217 currency code this service knows."),
    "invalid_period": (400, "date_to is before date_from."),
    "settlement_not_pending": (409, "The settlement is no longer pending."),
    "payee_owes": (409, "The payee owes money; mark the settlement failed, the next run nets it."),
    "adjustment_exceeds_owed": (409, "A write-off or repayment can be at most what is owed."),
    "period_end_in_future": (400, "A period can only be settled once it has begun."),
    "webhook_url_not_allowed": (400, "Webhook URLs must be public https URLs."),
    "webhook_endpoint_disabled": (409, "The webhook endpoint is disabled; enable it first."),
    "duplicate_sku": (409, "The brand already has a product with this SKU."),
    "rates_exceed_100_percent": (400, "A plan's rates add up to more than 10000 bps."),
    "currency_required": (400, "A plan with a fixed fee must name its currency."),
    "invalid_effective_range": (400, "effective_to must be after effective_from."),
    "kind_mismatch": (400, "The field or action does not apply to this kind of partner."),
    "required": (400, "A required field or parameter is missing."),
    "lines_or_amount": (400, "A refund takes exactly one of lines and amount."),
    "invalid_expand": (400, "expand names something that cannot be embedded here."),
    "replay_too_large": (400, "The replay window holds too many events; narrow it."),
    "unknown_field": (400, "The endpoint does not know this field; check its spelling."),
    "invalid_page_size": (400, "page_size must be a whole number from 1 to 200."),
    "filter_not_allowed": (400, "A staff filter; the directory filters by kind and name."),
    "chart_link_invalid": (403, "The chart link is invalid or has expired; ask for a new one."),
    "too_deep": (400, "Free-form JSON may be nested at most 10 levels deep."),
    "too_large": (400, "Free-form JSON is over its size bound (4096 bytes)."),
    "null_characters_not_allowed": (400, "Text may not hold the NUL character."),
}


class AppError(exceptions.APIException):
    """A domain error with a stable ``code``, raised by services and turned into a response."""

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        status_code: int | None = None,
        attr: str | None = None,
        extra: dict | None = None,
    ) -> None:
        default_status, default_detail = ERROR_CODES.get(code, (400, code))
        self.status_code = status_code or default_status
        self.code = code
        self.attr = attr
        # More members of the error object, beside code/detail/attr (e.g. "available": 0).
        self.extra = extra or {}
        message = detail or default_detail
        # A validation-style error keeps its attribute so clients can point at the field.
        super().__init__({attr: [message]} if attr else message, code)


class AppValidationError(exceptions.ValidationError):
    """A 400 validation error with a domain code on one attribute."""

    def __init__(self, code: str, detail: str | None = None, *, attr: str | None = None):
        message = detail or ERROR_CODES.get(code, (400, code))[1]
        super().__init__({attr: [message]} if attr else [message], code=code)


def _dependency_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "a dependency is away", not "a bug": the database (a restart, a
    connection ended by the server, a lock timeout) and the broker or Redis cache."""
    from django.db import InterfaceError, OperationalError

    errors: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:
        from kombu.exceptions import OperationalError as BrokerError

        errors.append(BrokerError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


DEPENDENCY_ERRORS = _dependency_errors()


def is_dependency_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what it was raised from) says the database or broker is away."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, DEPENDENCY_ERRORS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class ServiceUnavailable(exceptions.APIException):
    """503 ``service_unavailable`` with ``Retry-After``: the client should retry soon."""

    status_code = 503
    default_code = "service_unavailable"
    default_detail = ERROR_CODES["service_unavailable"][1]

    def __init__(self):
        super().__init__()
        self.wait = settings.SERVICE_UNAVAILABLE_RETRY_AFTER


def service_unavailable_response() -> JsonResponse:
    response = JsonResponse(
        error_body(
            "service_unavailable",
            ERROR_CODES["service_unavailable"][1],
            error_type="server_error",
        ),
        status=503,
    )
    response["Retry-After"] = str(settings.SERVICE_UNAVAILABLE_RETRY_AFTER)
    return response


class ExceptionHandler(BaseExceptionHandler):
    """drf-standardized-errors' handler, keeping the ``attr`` of a domain error, and turning
    an unreachable database or broker into ``503 service_unavailable`` instead of a 500.

    DRF's own messages for a missing key or a body that is not JSON say what went wrong but not
    what to do; these say how to fix the request.
    """

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if is_dependency_error(exc):
            logger.warning("dependency unavailable: %s: %s", type(exc).__name__, exc)
            return ServiceUnavailable()
        exc = super().convert_known_exceptions(exc)
        request = self.context.get("request")
        if request is None:
            return exc
        if isinstance(exc, exceptions.NotAuthenticated):
            better = exceptions.NotAuthenticated(_how_to_authenticate(request))
            better.auth_header = getattr(exc, "auth_header", None)  # WWW-Authenticate
            return better
        if isinstance(exc, exceptions.UnsupportedMediaType):
            sent = request.META.get("CONTENT_TYPE", "").split(";")[0].strip()
            said = f'this request said "{sent[:100]}"' if sent else "this request had none"
            return exceptions.UnsupportedMediaType(
                sent,
                detail=(
                    "Send the body as JSON with the header "
                    f'"Content-Type: application/json" ({said}).'
                ),
            )
        return exc

    def format_exception(self, exc: exceptions.APIException) -> dict:
        data = super().format_exception(exc)
        extra = getattr(exc, "extra", None)
        if extra and data.get("errors"):
            data["errors"][0].update(extra)
        return data

    def set_rollback(self) -> None:
        # If the connection is gone, so is its transaction.
        with contextlib.suppress(*DEPENDENCY_ERRORS):
            super().set_rollback()

    def get_headers(self, exc: exceptions.APIException) -> dict:
        headers = super().get_headers(exc)
        if getattr(exc, "wait", None) is not None and "Retry-After" not in headers:
            headers["Retry-After"] = "1"
        return headers


def _how_to_authenticate(request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "").strip()
    if not header:
        return "No API key was sent: send it as the header 'Authorization: Bearer <key>'."
    scheme = header.split()[0][:20]
    return (
        f"The '{scheme}' authorization scheme is not accepted: "
        "send the API key as 'Authorization: Bearer <key>'."
    )


def error_body(code: str, detail: str, *, error_type: str = "client_error", attr=None) -> dict:
    return {"type": error_type, "errors": [{"code": code, "detail": detail, "attr": attr}]}


def error_response(code: str, detail: str | None = None, *, status_code: int | None = None):
    """A plain Django JSON error response, for code that runs outside DRF (middleware, 404)."""
    default_status, default_detail = ERROR_CODES.get(code, (400, code))
    return JsonResponse(
        error_body(code, detail or default_detail), status=status_code or default_status
    )


@csrf_exempt  # also the catch-all view: an unknown URL is 404, not a CSRF page, for any method
def handler404(request, exception=None):
    return JsonResponse(
        error_body("not_found", "No such resource."), status=status.HTTP_404_NOT_FOUND
    )


def handler500(request):
    # Django calls this inside its ``except`` block: an exception raised outside DRF (in a
    # middleware such as idempotency's, or the session's) that says the database or broker is
    # away is a 503 too.
    if is_dependency_error(sys.exc_info()[1]):
        return service_unavailable_response()
    return JsonResponse(
        error_body("error", "Server Error (500)", error_type="server_error"),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def handler400(request, exception=None):
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)


def handler403(request, exception=None):
    return JsonResponse(error_body("permission_denied", "Forbidden."), status=403)
