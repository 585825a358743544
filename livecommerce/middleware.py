"""Request plumbing that runs before DRF: body size limits."""

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
