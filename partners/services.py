"""Writes for partners, API keys and enrollments."""

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record, created_changes, field_changes, field_values
from livecommerce.errors import AppValidationError
from partners.choices import BrandAccess, PartnerKind, PartnerStatus
from partners.models import APIKey, Enrollment, Partner
from partners.webhooks.choices import WebhookDeliveryStatus
from partners.webhooks.models import WebhookDelivery

_UNSET = object()
# What the audit trail records of a partner and of a key (never the key or its hash).
_PARTNER_FIELDS = (
    "kind",
    "name",
    "email",
    "status",
    "brand_access",
    "fulfillment_partner_id",
    "payout_schedule",
    "minimum_payout",
)
_KEY_FIELDS = ("name", "prefix", "partner_id", "role")


def _check_fulfillment_partner(fulfillment_partner: Partner | None) -> None:
    if fulfillment_partner is not None and fulfillment_partner.kind != PartnerKind.FULFILLMENT:
        raise AppValidationError(
            "invalid_reference",
            "fulfillment_partner must be a partner of kind 'fulfillment'.",
            attr="fulfillment_partner",
        )


@transaction.atomic
def partner_create(
    *,
    kind: str,
    name: str,
    email: str = "",
    status: str | None = None,
    brand_access: str | None = None,
    fulfillment_partner: Partner | None = None,
    payout_schedule: str | None = None,
    minimum_payout: dict[str, int] | None = None,
    actor=None,
) -> Partner:
    """Onboard a partner. A host app defaults to ``open``; only a brand names a fulfiller.

    ``actor`` (the API caller) is recorded in the audit trail, as in every write here.
    """
    if kind == PartnerKind.HOST_APP:
        brand_access = brand_access or BrandAccess.OPEN
    elif brand_access:
        raise AppValidationError(
            "kind_mismatch", "brand_access applies to host apps only.", attr="brand_access"
        )
    if fulfillment_partner is not None and kind != PartnerKind.BRAND:
        raise AppValidationError(
            "kind_mismatch", "Only a brand names a fulfillment_partner.", attr="fulfillment_partner"
        )
    _check_fulfillment_partner(fulfillment_partner)
    partner = Partner(
        kind=kind,
        name=name,
        email=email,
        brand_access=brand_access or "",
        fulfillment_partner=fulfillment_partner,
    )
    if status:
        partner.status = status
    if payout_schedule:
        partner.payout_schedule = payout_schedule
    if minimum_payout:
        partner.minimum_payout = minimum_payout
    partner.save()
    audit_record(
        actor=actor,
        action="partner.created",
        target=partner,
        changes=created_changes(partner, _PARTNER_FIELDS),
    )
    return partner


@transaction.atomic
def partner_update(*, partner: Partner, actor=None, **changes) -> Partner:
    """Change a partner's name, email, status (suspend/reactivate), access or payout terms.

    ``minimum_payout`` replaces the whole map (minor units per currency).
    """
    partner = Partner.objects.select_for_update().get(pk=partner.pk)
    before = field_values(partner, _PARTNER_FIELDS)
    if "brand_access" in changes and partner.kind != PartnerKind.HOST_APP:
        raise AppValidationError(
            "kind_mismatch", "brand_access applies to host apps only.", attr="brand_access"
        )
    if "fulfillment_partner" in changes:
        if partner.kind != PartnerKind.BRAND:
            raise AppValidationError(
                "kind_mismatch",
                "Only a brand names a fulfillment_partner.",
                attr="fulfillment_partner",
            )
        _check_fulfillment_partner(changes["fulfillment_partner"])
    fields = []
    for field in (
        "name",
        "email",
        "status",
        "brand_access",
        "fulfillment_partner",
        "payout_schedule",
        "minimum_payout",
    ):
        if field in changes:
            setattr(partner, field, changes[field])
            fields.append(field)
    if fields:
        partner.save(update_fields=[*fields, "updated"])
    if "status" in changes and partner.status == PartnerStatus.SUSPENDED:
        # Nothing pending goes out to a suspended partner (its webhooks carry buyers' data);
        # events published while it is suspended are not addressed to it at all.
        WebhookDelivery.objects.filter(
            endpoint__partner=partner, status=WebhookDeliveryStatus.PENDING
        ).update(
            status=WebhookDeliveryStatus.FAILED,
            next_attempt_at=None,
            enqueued_at=None,
            last_error="partner suspended",
        )
    if changed := field_changes(before, partner):
        audit_record(actor=actor, action="partner.updated", target=partner, changes=changed)
    return partner


@transaction.atomic
def api_key_create(
    *, name: str, partner: Partner | None = None, role: str = "", actor=None
) -> tuple[APIKey, str]:
    """Issue a key for a partner or a staff role; the raw key is returned once, never stored."""
    api_key, raw_key = APIKey.objects.create_key(name=name[:50], partner=partner, role=role)
    audit_record(
        actor=actor,
        action="api_key.created",
        target=api_key,
        changes=created_changes(api_key, _KEY_FIELDS),
    )
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, api_key: APIKey, actor=None) -> APIKey:
    """Revoke a key for good: it stops authenticating at once and cannot be restored."""
    api_key = APIKey.objects.select_for_update().get(pk=api_key.pk)
    if not api_key.revoked:
        api_key.revoked = True
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked", "revoked_at"])
        audit_record(
            actor=actor,
            action="api_key.revoked",
            target=api_key,
            changes={"revoked": (False, True)},
        )
    return api_key


def _check_enrollment(host_app: Partner, brand: Partner) -> None:
    if host_app.kind != PartnerKind.HOST_APP:
        raise AppValidationError("kind_mismatch", "Enrollments belong to host apps.", attr=None)
    if brand.kind != PartnerKind.BRAND:
        raise AppValidationError("invalid_reference", "brand must be a brand.", attr="brand")


@transaction.atomic
def enrollment_create(*, host_app: Partner, brand: Partner, actor=None) -> tuple[Enrollment, bool]:
    """Enroll a brand with a host app; enrolling twice is harmless (returns the first)."""
    _check_enrollment(host_app, brand)
    enrollment, created = Enrollment.objects.get_or_create(host_app=host_app, brand=brand)
    if created:
        audit_record(
            actor=actor,
            action="partner.brand_enrolled",
            target=host_app,
            changes={"brand": (None, brand.pk)},
        )
    return enrollment, created


@transaction.atomic
def enrollment_delete(*, host_app: Partner, brand: Partner, actor=None) -> bool:
    """Withdraw a brand from a host app; returns whether it was enrolled."""
    _check_enrollment(host_app, brand)
    deleted, _ = Enrollment.objects.filter(host_app=host_app, brand=brand).delete()
    if deleted:
        audit_record(
            actor=actor,
            action="partner.brand_withdrawn",
            target=host_app,
            changes={"brand": (brand.pk, None)},
        )
    return bool(deleted)
