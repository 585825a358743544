"""``GET /live-sessions/{id}/feed``: the show's live feed as Server-Sent Events.

A plain Django async view, not a DRF one (DRF views are synchronous): under ASGI (uvicorn,
``livecommerce.asgi:application``) an open feed holds no thread and no web worker; under WSGI
(``runserver``, the embedded default) it still works, one thread per feed for a while (see
``orders.feed``). ``LiveSessionFeedView`` exists for the OpenAPI schema only: drf-spectacular
documents the path from it, and the URL is served by :func:`live_session_feed`.
"""

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.http import JsonResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.views import APIView

from livecommerce.errors import error_body
from livecommerce.schema import ErrorSerializer
from orders import feed
from orders.api.examples import FEED_EXAMPLE, FEED_MESSAGE_EXAMPLE
from partners.authentication import APIKeyAuthentication, Caller

FEED_DESCRIPTION = """\
The show's sales as they happen, as Server-Sent Events (`text/event-stream`), for the host apps
it is broadcast on, the fulfillment partner that produced it or fulfils a brand it shows, and
staff (anyone else: 404).

Events:
- `stats`: `{"live_session", "status", "orders", "units_sold", "gross", "available", "at"}`, on
  connecting and then whenever a figure changed (checked every second; at least every 2 s while
  anything changes). `orders` counts the show's paid orders (not canceled or refunded in full),
  `units_sold` their units net of returns, `gross` their merchandise net of refunds per currency
  (`{"USD": "749.50"}`), `available` the units on hand per product shown.
- `product.sold_out`, `product.back_in_stock`: `{"product", "available", "live_sessions"}`, as
  they happen (the same data as the webhook events).
- `live_session.ended`: `{"live_session", "ended_at"}`; the stream then closes.

Every message has an `id`. Reconnect with the `Last-Event-ID` header (browsers' `EventSource`
does) and the feed resumes after that message: no `product.*` or `live_session.ended` message is
lost, and fresh `stats` follow (a garbled `Last-Event-ID` is ignored: the feed starts from the
top). Lines starting with `:` are keep-alive comments.

Access is checked again every few seconds while the stream is open: once the API key is revoked
or expired, the partner suspended, or the host app taken off the show, the stream closes
(reconnecting then answers 401, 403 or 404).
"""


class LiveFeedMessageSerializer(serializers.Serializer):
    """One Server-Sent Events message of the feed (the stream is a sequence of them)."""

    id = serializers.CharField(
        help_text="The message's id: `12` (the show's 12th stock or end message) or `12:3` "
        "(stats sent after it); send it back as `Last-Event-ID` to resume."
    )
    event = serializers.ChoiceField(
        choices=["stats", "product.sold_out", "product.back_in_stock", "live_session.ended"]
    )
    data = serializers.CharField(help_text="A JSON object: see the description for each event.")


class LiveSessionFeedView(APIView):
    """The schema's description of the feed (the URL is served by ``live_session_feed``)."""

    @extend_schema(
        operation_id="live_sessions_feed",
        summary="A live session's feed (Server-Sent Events)",
        tags=["live sessions"],
        description=FEED_DESCRIPTION,
        parameters=[
            OpenApiParameter(
                name="Last-Event-ID",
                type=OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                required=False,
                description="The `id` of the last message received: resume after it.",
            )
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                response=LiveFeedMessageSerializer,
                description="A stream of SSE messages (`id`, `event`, `data` as JSON), e.g.\n\n"
                "```\n" + FEED_EXAMPLE + "```",
                examples=[OpenApiExample("A sell-out", value=FEED_MESSAGE_EXAMPLE)],
            ),
            404: OpenApiResponse(ErrorSerializer, description="No such live session for you."),
        },
    )
    def get(self, request, pk=None):  # pragma: no cover - documentation only
        raise exceptions.NotFound()


def _caller(request) -> Caller:
    """The API key's caller, or DRF's authentication errors (401 / 403)."""
    result = APIKeyAuthentication().authenticate(request)
    if result is None:
        raise exceptions.NotAuthenticated()
    return result[0]


def _authorize_in_db_thread(request, pk: str):
    close_old_connections()  # on a feed database thread: replace a stale connection
    return _authorize(request, pk)


def _authorize(request, pk: str):
    try:
        caller = _caller(request)
    except exceptions.APIException as exc:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        response = JsonResponse(error_body(code, str(exc.detail)), status=exc.status_code)
        if exc.status_code == 401:
            response["WWW-Authenticate"] = APIKeyAuthentication().authenticate_header(request)
        return None, response
    session = feed.feed_session_for(caller, pk)
    if session is None:
        return None, JsonResponse(error_body("not_found", "No such live session."), status=404)
    # Asked again every LIVE_FEED_RECHECK_SECONDS while the feed is open.
    return feed.FeedAccess(caller.api_key_id, session.pk), None


async def live_session_feed(request, pk: str):
    if request.method != "GET":
        return JsonResponse(
            error_body("method_not_allowed", f'Method "{request.method}" not allowed.'),
            status=405,
        )
    if feed.is_asgi(request):
        allowed, refusal = await feed.in_db_thread(_authorize_in_db_thread, request, pk)
    else:
        allowed, refusal = await sync_to_async(_authorize)(request, pk)  # the request's thread
    if refusal is not None:
        return refusal
    last_seen = feed.parse_last_event_id(request.headers.get("Last-Event-ID"))
    if feed.is_asgi(request):
        stream = feed.async_feed(pk, last_seen, allowed)
    else:
        # WSGI (runserver, gunicorn): a thread per feed, on the request's own connection
        stream = feed.sync_feed(pk, last_seen, allowed)
    response = StreamingHttpResponse(stream, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy (nginx) must pass each message on at once
    return response


# For drf-spectacular: the URL's callback looks like the DRF view it documents.
live_session_feed.cls = LiveSessionFeedView
live_session_feed.initkwargs = {}
