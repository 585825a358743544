"""Reads for partners and keys, scoped to the caller."""

from django.db.models import Prefetch, QuerySet

from partners.models import APIKey, Enrollment, Partner


def partner_list(*, caller) -> QuerySet[Partner]:
    return (
        Partner.objects.visible_to(caller)
        .select_related("fulfillment_partner")
        .prefetch_related(
            Prefetch("enrollments", queryset=Enrollment.objects.only("id", "host_app", "brand"))
        )
    )


def api_key_list(*, partner: Partner) -> QuerySet[APIKey]:
    return APIKey.objects.filter(partner=partner).order_by("-created")


def enrollment_list(*, host_app: Partner) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(host_app=host_app).select_related("brand")
