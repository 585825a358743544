"""Reads for partners and keys, scoped to the caller."""

from django.db.models import Prefetch, Q, QuerySet

from partners.choices import BrandAccess, PartnerKind
from partners.models import APIKey, Enrollment, Partner


def partner_list(*, caller) -> QuerySet[Partner]:
    return (
        Partner.objects.visible_to(caller)
        .select_related("fulfillment_partner")
        .prefetch_related(
            Prefetch("enrollments", queryset=Enrollment.objects.only("id", "host_app", "brand"))
        )
    )


def partner_directory(*, partner: Partner) -> QuerySet[Partner]:
    """The partners ``partner`` deals with (itself excluded), for ``GET /partners``.

    A host app: the brands it may sell (every brand when ``open``, the enrolled ones when
    ``invite_only``), their fulfillment partners, and the creators of the live sessions it
    broadcasts or produces. A fulfillment partner: its brands and the host apps its live
    sessions are broadcast on. A brand: its fulfillment partner. A creator: the host apps of
    its live sessions. Live sessions are reached through their relations' names, so this
    module imports nothing of ``orders``.
    """
    kind = partner.kind
    others = Partner.objects.none()
    if kind == PartnerKind.HOST_APP:
        brands = Partner.objects.filter(kind=PartnerKind.BRAND)
        if partner.brand_access == BrandAccess.INVITE_ONLY:
            brands = brands.filter(enrolled_in=partner)
        creators = Partner.objects.filter(kind=PartnerKind.CREATOR).filter(
            Q(hosted_sessions__host_apps=partner) | Q(hosted_sessions__producer=partner)
        )
        fulfillers = Partner.objects.filter(
            kind=PartnerKind.FULFILLMENT, brands__in=brands.values("pk")
        )
        others = Partner.objects.filter(
            Q(pk__in=brands.values("pk"))
            | Q(pk__in=fulfillers.values("pk"))
            | Q(pk__in=creators.values("pk"))
        )
    elif kind == PartnerKind.FULFILLMENT:
        host_apps = Partner.objects.filter(
            kind=PartnerKind.HOST_APP, broadcast_sessions__producer=partner
        )
        others = Partner.objects.filter(
            Q(fulfillment_partner=partner, kind=PartnerKind.BRAND)
            | Q(pk__in=host_apps.values("pk"))
        )
    elif kind == PartnerKind.BRAND:
        others = Partner.objects.filter(pk=partner.fulfillment_partner_id)
    elif kind == PartnerKind.CREATOR:
        others = Partner.objects.filter(
            kind=PartnerKind.HOST_APP, broadcast_sessions__creator=partner
        )
    return Partner.objects.filter(pk__in=others.exclude(pk=partner.pk).values("pk"))


def api_key_list(*, partner: Partner) -> QuerySet[APIKey]:
    return APIKey.objects.filter(partner=partner).order_by("-created")


def enrollment_list(*, host_app: Partner) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(host_app=host_app).select_related("brand")
