"""Request plumbing that runs before DRF: body size limits, NUL characters in the URL."""

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
