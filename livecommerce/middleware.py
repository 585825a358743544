"""Request plumbing that runs before DRF: body size limits, NUL characters in the URL, the
headers every answer carries (Cache-Control on the API, a Content-Security-Policy on HTML
pages), and who may read ``/metrics``."""

import hmac
import ipaddress

from django.conf import settings

from livecommerce.errors import error_response


class RequestSizeLimitMiddleware:
    """Answer 413 in the contract's error format for a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``.

    Django checks the limit only when ``request.body`` is read, and DRF reads the stream
    directly, so without this an oversized JSON body would be parsed in full.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return error_response(
                "request_too_large", f"The request body is over {limit} bytes.", status_code=413
            )
        return self.get_response(request)


class RejectNulCharactersMiddleware:
    """Answer a NUL character in the path (404) or the query string (400) before anything
    looks it up: PostgreSQL refuses NUL in text, so ``/orders/a%00b`` was a 500 on every
    endpoint with an id, and on the idempotency record of a POST (fuzzing found it in a query
    parameter; the path was then tried by hand). No id
    holds a NUL, so such a path names nothing; a query value with one is not one the request
    can mean.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path:
            return error_response("not_found", "No such resource.", status_code=404)
        if any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return error_response(
                "parse_error", "The query string contains a NUL character.", status_code=400
            )
        return self.get_response(request)


class ResponseHeadersMiddleware:
    """``Cache-Control: no-store`` on every API answer, and a Content-Security-Policy on HTML.

    API answers are about one caller and some show a secret once (an API key at creation, a
    webhook signing secret at creation and rotation): no browser, proxy or CDN may keep them.
    The HTML pages (Swagger UI, Redoc, the finance chart) load scripts and styles only from this
    service (``CONTENT_SECURITY_POLICY``); Swagger UI's settings come from a script file of
    its own (``SpectacularSwaggerSplitView``), so no inline script is needed.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/api/v1/"):
            response.setdefault("Cache-Control", "no-store")
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class MetricsAccessMiddleware:
    """``/metrics`` only for a scraper that shows ``METRICS_TOKEN`` (``Authorization: Bearer``)
    or calls from ``METRICS_ALLOWED_NETWORKS``; anyone else gets the JSON 404 any unknown path
    gets. With neither set, the metrics are not served at all."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/metrics" and not self._allowed(request):
            return error_response("not_found", "No such resource.", status_code=404)
        return self.get_response(request)

    def _allowed(self, request) -> bool:
        token = settings.METRICS_TOKEN
        if token:
            given = request.META.get("HTTP_AUTHORIZATION", "")
            if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return True
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        return any(
            address in ipaddress.ip_network(network, strict=False)
            for network in settings.METRICS_ALLOWED_NETWORKS
        )
