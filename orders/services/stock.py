"""Stock events: telling partners, and the live feeds of the shows, when a product sells out or
comes back.

Every path that changes a product's inventory (an order reserving units, a cancel, an expiry or
a restocking refund putting them back, a catalog edit) hands its before and after counts to
:func:`stock_changed`, in its own transaction and with the product rows locked, so the event
is written with the change that crossed zero and never for a change that rolled back.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping

from django.db.models import Max

from orders.choices import LiveSessionStatus
from orders.models import LiveFeedMessage, LiveSession, Product
from partners.events import event_publish

SOLD_OUT = "product.sold_out"
BACK_IN_STOCK = "product.back_in_stock"
# Shows whose host apps hear of a product's stock: those not ended yet.
ACTIVE_SESSION_STATUSES = (LiveSessionStatus.SCHEDULED, LiveSessionStatus.LIVE)


def stock_changed(changes: Mapping[str, tuple[int, int]]) -> None:
    """Publish ``product.sold_out`` / ``product.back_in_stock`` for each product whose available
    units crossed zero: ``changes`` maps product id -> (units before, units after).

    Recipients: the fulfillment partner of the product's brand and every host app of every
    scheduled or live session featuring it; each of those sessions' feeds gets the message too.
    Costs nothing (no query) when no product crossed zero, which is the common case.
    """
    crossed = {
        product_id: after
        for product_id, (before, after) in changes.items()
        if (before > 0) != (after > 0)
    }
    if not crossed:
        return
    sessions_of: dict[str, list[str]] = defaultdict(list)
    for product_id, session_id in LiveSession.products.through.objects.filter(
        product_id__in=crossed, livesession__status__in=ACTIVE_SESSION_STATUSES
    ).values_list("product_id", "livesession_id"):
        sessions_of[product_id].append(session_id)
    host_apps_of: dict[str, list[str]] = defaultdict(list)
    for session_id, partner_id in LiveSession.host_apps.through.objects.filter(
        livesession_id__in={s for ids in sessions_of.values() for s in ids}
    ).values_list("livesession_id", "partner_id"):
        host_apps_of[session_id].append(partner_id)
    fulfiller_of = dict(
        Product.objects.filter(pk__in=crossed).values_list("pk", "brand__fulfillment_partner_id")
    )
    feed: list[tuple[str, str, dict]] = []
    for product_id in sorted(crossed):
        available = crossed[product_id]
        sessions = sorted(sessions_of.get(product_id, ()))
        event_type = SOLD_OUT if available == 0 else BACK_IN_STOCK
        data = {"product": product_id, "available": available, "live_sessions": sessions}
        event_publish(
            type=event_type,
            object_id=product_id,
            data=data,
            partner_ids=[
                fulfiller_of.get(product_id),
                *(host for session_id in sessions for host in host_apps_of[session_id]),
            ],
        )
        feed.extend((session_id, event_type, data) for session_id in sessions)
    feed_append(feed)


def feed_append(messages: Iterable[tuple[str, str, dict]]) -> list[LiveFeedMessage]:
    """Append ``(live session id, type, data)`` messages to the sessions' live feeds.

    Takes the sessions' row locks (in id order; always after any product lock, never before) so
    that each session's ``seq`` runs 1, 2, 3, ... in commit order: a reader that saw message n
    has already been able to see every message before it.
    """
    messages = list(messages)
    if not messages:
        return []
    session_ids = sorted({session_id for session_id, _, _ in messages})
    list(
        LiveSession.objects.select_for_update()
        .filter(pk__in=session_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    last = dict(
        LiveFeedMessage.objects.filter(session_id__in=session_ids)
        .values("session_id")
        .annotate(m=Max("seq"))
        .values_list("session_id", "m")
    )
    rows = []
    for session_id, event_type, data in messages:
        last[session_id] = (last.get(session_id) or 0) + 1
        rows.append(
            LiveFeedMessage(session_id=session_id, seq=last[session_id], type=event_type, data=data)
        )
    return LiveFeedMessage.objects.bulk_create(rows)
