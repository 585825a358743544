"""Writes for live sessions: scheduling a show, where it is broadcast, going live and ending."""

from collections.abc import Mapping, Sequence
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from livecommerce.api import parse_amount
from livecommerce.errors import AppError, AppValidationError
from livecommerce.wire import timestamp
from orders.models import LiveSession, Product
from orders.payloads import live_session_payload
from orders.services.stock import feed_append
from orders.status import live_session_move
from partners.choices import BrandAccess, PartnerKind
from partners.events import event_publish
from partners.models import Enrollment, Partner


def _broadcast_host_apps(*, producer: Partner, host_app_ids: Sequence[str] | None) -> list[Partner]:
    if producer.kind == PartnerKind.HOST_APP:
        if host_app_ids is not None and set(host_app_ids) != {producer.pk}:
            raise AppValidationError(
                "invalid_reference",
                "A host app broadcasts the shows it produces on itself only.",
                attr="host_apps",
            )
        return [producer]
    if not host_app_ids:
        raise AppValidationError(
            "required", "Name the host apps the show is broadcast on.", attr="host_apps"
        )
    found = {
        p.pk: p for p in Partner.objects.filter(pk__in=host_app_ids, kind=PartnerKind.HOST_APP)
    }
    for index, host_app_id in enumerate(host_app_ids):
        if host_app_id not in found:
            raise AppValidationError(
                "invalid_reference", f"No host app {host_app_id}.", attr=f"host_apps.{index}"
            )
    return list(found.values())


def _session_products(*, producer: Partner, product_ids: Sequence[str]) -> list[Product]:
    found = {
        p.pk: p
        for p in Product.objects.filter(pk__in=product_ids).filter(
            Product.objects.partner_filter(producer)
        )
    }
    for index, product_id in enumerate(product_ids):
        if product_id not in found:
            raise AppValidationError(
                "invalid_reference", f"No product {product_id}.", attr=f"products.{index}"
            )
    return list(found.values())


def _check_brands_sellable(*, host_apps: Sequence[Partner], brand_ids: set[str]) -> None:
    """Every host app the show is broadcast on must be allowed to sell every brand it shows."""
    invite_only = [h for h in host_apps if h.brand_access == BrandAccess.INVITE_ONLY]
    if not invite_only or not brand_ids:
        return
    enrolled = set(
        Enrollment.objects.filter(host_app__in=invite_only, brand__in=brand_ids).values_list(
            "host_app_id", "brand_id"
        )
    )
    for host_app in sorted(invite_only, key=lambda h: h.pk):
        for brand_id in sorted(brand_ids):
            if (host_app.pk, brand_id) not in enrolled:
                raise AppError(
                    "brand_not_enrolled",
                    f"Host app {host_app.pk} may not sell brand {brand_id}: it is invite-only "
                    "and the brand is not enrolled.",
                    attr="host_apps",
                )


def _live_prices(prices: Mapping[str, str], products: Sequence[Product]) -> dict:
    """The show's live prices as stored: product id -> {"amount": minor units, "currency"}.

    Each must name a product the show features and be exact in that product's currency, like
    every amount the API takes.
    """
    featured = {p.pk: p for p in products}
    stored = {}
    for product_id, price in prices.items():
        product = featured.get(product_id)
        if product is None:
            raise AppValidationError(
                "invalid_reference",
                f"The show does not feature product {product_id}; list it in products first.",
                attr=f"live_prices.{product_id}",
            )
        amount = parse_amount(price, product.currency, attr=f"live_prices.{product_id}")
        stored[product_id] = {"amount": amount, "currency": product.currency}
    return stored


@transaction.atomic
def live_session_create(
    *,
    producer: Partner,
    title: str,
    scheduled_start: datetime,
    creator_id: str | None = None,
    product_ids: Sequence[str] = (),
    host_app_ids: Sequence[str] | None = None,
    hold_seconds: int | None = None,
    live_prices: Mapping[str, str] | None = None,
) -> LiveSession:
    """Schedule a live show hosted by a creator and broadcast on one or more host apps.

    A host app produces shows for itself; a fulfillment partner produces shows of the brands it
    fulfils and broadcasts them on several host apps. Orders placed on those host apps and
    naming the show are attributed to it and to its creator. ``live_prices`` (product id ->
    decimal string in the product's currency) are paid by the show's orders while it is live;
    ``hold_seconds`` is how long its unpaid orders hold their units (``ORDER_HOLD_SECONDS``).
    """
    creator = None
    if creator_id:
        creator = Partner.objects.filter(pk=creator_id, kind=PartnerKind.CREATOR).first()
        if creator is None:
            raise AppValidationError(
                "invalid_reference", f"No creator {creator_id}.", attr="creator"
            )
    host_apps = _broadcast_host_apps(producer=producer, host_app_ids=host_app_ids)
    products = _session_products(producer=producer, product_ids=list(dict.fromkeys(product_ids)))
    _check_brands_sellable(host_apps=host_apps, brand_ids={p.brand_id for p in products})
    session = LiveSession.objects.create(
        producer=producer,
        creator=creator,
        title=title,
        scheduled_start=scheduled_start,
        hold_seconds=hold_seconds or settings.ORDER_HOLD_SECONDS,
        live_prices=_live_prices(live_prices or {}, products),
    )
    session.host_apps.set(host_apps)
    session.products.set(products)
    return session


def _lock_produced(session: LiveSession, actor: Partner) -> LiveSession:
    session = LiveSession.objects.select_for_update().get(pk=session.pk)
    if session.producer_id != actor.pk:
        raise PermissionDenied("Only the partner that produced this live session may do this.")
    return session


@transaction.atomic
def live_session_update(
    *,
    session: LiveSession,
    actor: Partner,
    live_prices: Mapping[str, str] | None = None,
    hold_seconds: int | None = None,
) -> LiveSession:
    """Change a show's live prices (a flash price, at any time, even while live) or its hold.

    ``live_prices`` replaces the whole map (``{}`` ends every live price). Orders already placed
    keep what they were priced at; a new hold applies to orders placed from now on.
    """
    session = _lock_produced(session, actor)
    fields = []
    if live_prices is not None:
        products = list(Product.objects.filter(live_sessions=session))
        session.live_prices = _live_prices(live_prices, products)
        fields.append("live_prices")
    if hold_seconds is not None:
        session.hold_seconds = hold_seconds
        fields.append("hold_seconds")
    if fields:
        session.save(update_fields=[*fields, "updated"])
    return session


def _live_session_move(session: LiveSession, *, action: str, actor: Partner) -> LiveSession:
    session = _lock_produced(session, actor)
    move = live_session_move(action, session.status)
    stamp = "started_at" if action == "start" else "ended_at"
    session.status = move.target
    setattr(session, stamp, timezone.now())
    session.save(update_fields=["status", stamp, "updated"])

    session = LiveSession.objects.prefetch_related("products", "host_apps").get(pk=session.pk)
    if action == "end":
        # The show's feed tells its viewers' apps, then closes (the row lock is held).
        feed_append(
            [
                (
                    session.pk,
                    "live_session.ended",
                    {"live_session": session.pk, "ended_at": timestamp(session.ended_at)},
                )
            ]
        )
    featured = Product.objects.filter(live_sessions=session).values_list(
        "brand_id", "brand__fulfillment_partner_id"
    )
    event_publish(
        type=f"live_session.{'started' if action == 'start' else 'ended'}",
        object_id=session.pk,
        data=live_session_payload(session),
        partner_ids=[
            session.producer_id,
            session.creator_id,
            *(h.pk for h in session.host_apps.all()),
            *(partner_id for pair in featured for partner_id in pair),
        ],
    )
    return session


@transaction.atomic
def live_session_start(*, session: LiveSession, actor: Partner) -> LiveSession:
    """Go live (scheduled -> live); tells the host apps, creator, brands and fulfillers."""
    return _live_session_move(session, action="start", actor=actor)


@transaction.atomic
def live_session_end(*, session: LiveSession, actor: Partner) -> LiveSession:
    """End the show (live -> ended). Orders may still name it afterwards (replays sell too)."""
    return _live_session_move(session, action="end", actor=actor)
