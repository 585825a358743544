"""Partners of the platform and the credentials they call the API with."""

from django.db import connections, models
from django.db.models import Q
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from livecommerce import rows
from livecommerce.ids import ID_MAX_LENGTH, IdFactory
from partners.choices import BrandAccess, PartnerKind, PartnerStatus, PayoutSchedule, StaffRole


class TenantQuerySet(models.QuerySet):
    """The one tenancy mechanism: every API read starts from ``visible_to(caller)``.

    Staff see everything their role may read; a partner sees only the rows that concern it, as
    ``partner_filter`` defines for each model. A row outside that scope is simply not found, so
    another partner's object answers 404 and its existence does not leak.
    """

    def partner_filter(self, partner: "Partner") -> Q:  # pragma: no cover - abstract
        raise NotImplementedError

    def visible_to(self, caller) -> "TenantQuerySet":
        if caller is None or not getattr(caller, "is_authenticated", False):
            return self.none()  # schema generation and anonymous callers see nothing
        if caller.is_staff:
            return self.all()
        return self.filter(self.partner_filter(caller.partner))


class PartnerQuerySet(TenantQuerySet):
    def partner_filter(self, partner: "Partner") -> Q:
        return Q(pk=partner.pk)


class Partner(models.Model):
    """A company that takes part in live shopping: host app, fulfillment partner, brand or creator.

    A brand names the fulfillment partner that keeps its catalog and ships its orders. A host app
    is open to every brand or, when ``invite_only``, sells only the brands enrolled with it.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("prt"))
    kind = models.CharField(max_length=20, choices=PartnerKind.choices)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    status = models.CharField(
        max_length=20, choices=PartnerStatus.choices, default=PartnerStatus.ACTIVE
    )
    brand_access = models.CharField(
        max_length=20, choices=BrandAccess.choices, blank=True, default=""
    )
    fulfillment_partner = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="brands"
    )
    enrolled_brands = models.ManyToManyField(
        "self", through="Enrollment", symmetrical=False, related_name="enrolled_in", blank=True
    )
    payout_schedule = models.CharField(
        max_length=10, choices=PayoutSchedule.choices, default=PayoutSchedule.DAILY
    )
    # Per currency, in minor units ({"USD": 2500}): a smaller balance rolls over to a later run.
    minimum_payout = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    objects = PartnerQuerySet.as_manager()

    class Meta:
        ordering = ("-created",)
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=PartnerKind.HOST_APP, brand_access__in=list(BrandAccess.values))
                | (~Q(kind=PartnerKind.HOST_APP) & Q(brand_access="")),
                name="partner_brand_access_only_for_host_apps",
            ),
            models.CheckConstraint(
                condition=Q(kind=PartnerKind.BRAND) | Q(fulfillment_partner__isnull=True),
                name="partner_fulfillment_partner_only_for_brands",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def is_active(self) -> bool:
        return self.status == PartnerStatus.ACTIVE

    def may_sell_brand(self, brand: "Partner") -> bool:
        """Whether this host app may sell ``brand``'s products (cheap check, one query at most)."""
        if self.brand_access != BrandAccess.INVITE_ONLY:
            return True
        return Enrollment.objects.filter(host_app=self, brand=brand).exists()


class Enrollment(models.Model):
    """A brand enrolled with an ``invite_only`` host app, which may then sell its products."""

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("enr"))
    host_app = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="enrollments")
    brand = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created",)
        constraints = [
            models.UniqueConstraint(fields=["host_app", "brand"], name="enrollment_once")
        ]

    def __str__(self) -> str:
        return f"{self.brand_id} @ {self.host_app_id}"


class APIKeyManager(BaseAPIKeyManager):
    def assign_key(self, obj: "APIKey") -> str:
        # The library would make the primary key from the hash; ours stays an opaque ``key_`` id.
        key, prefix, hashed_key = self.key_generator.generate()
        obj.prefix = prefix
        obj.hashed_key = hashed_key
        return key

    def get_usable_keys(self):
        return self.filter(revoked=False).select_related("partner")

    def get_from_key(self, key: str) -> "APIKey":
        """The library's lookup (a usable key by its prefix, then the key checked against its
        hash), with the key and its partner read in one row by SQL text written once: every
        authenticated request runs it, and the ORM's query cost six times as much CPU to build
        and read as the same statement kept as text."""
        prefix, _, _ = key.partition(".")
        connection = connections[self.db]
        with connection.cursor() as cursor:
            cursor.execute(_usable_key_sql(connection), [prefix, False])
            row = cursor.fetchone()
        if row is None:
            raise self.model.DoesNotExist("No usable key has this prefix.")
        split = len(APIKey._meta.concrete_fields)
        api_key = rows.instance(APIKey, row[:split], connection)
        APIKey.partner.field.set_cached_value(
            api_key, rows.instance(Partner, row[split:], connection)
        )
        if not api_key.is_valid(key):
            raise self.model.DoesNotExist("Key is not valid.")
        return api_key


class APIKey(AbstractAPIKey):
    """A Bearer credential for one partner or one staff member with a role.

    The key itself is shown once, at creation; only its SHA-512 hash and its prefix are stored.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("key"))
    partner = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )
    role = models.CharField(max_length=20, choices=StaffRole.choices, blank=True, default="")
    last_used = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = APIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        abstract = False
        constraints = [
            models.CheckConstraint(
                condition=(Q(partner__isnull=False) & Q(role=""))
                | (Q(partner__isnull=True) & Q(role__in=list(StaffRole.values))),
                name="api_key_partner_xor_staff_role",
            )
        ]


_USABLE_KEY_SQL: dict[str, str] = {}


def _usable_key_sql(connection) -> str:
    """``get_usable_keys().get(prefix=...)`` as text (once per database vendor): the key's
    columns, then its partner's (all None for a staff key); the prefix and ``revoked`` are
    parameters."""
    if connection.vendor not in _USABLE_KEY_SQL:
        quote = connection.ops.quote_name
        key, partner = APIKey._meta, Partner._meta
        _USABLE_KEY_SQL[connection.vendor] = (
            f"SELECT {rows.select_list(APIKey, 'k', connection)},"  # noqa: S608 (no values)
            f" {rows.select_list(Partner, 'p', connection)}"
            f" FROM {quote(key.db_table)} k LEFT JOIN {quote(partner.db_table)} p"
            f" ON p.{quote(partner.pk.column)} = k.{quote(key.get_field('partner').column)}"
            f" WHERE k.{quote(key.get_field('prefix').column)} = %s"
            f" AND k.{quote(key.get_field('revoked').column)} = %s"
        )
    return _USABLE_KEY_SQL[connection.vendor]


class EventQuerySet(TenantQuerySet):
    def partner_filter(self, partner: Partner) -> Q:
        return Q(recipients__partner=partner)


class Event(models.Model):
    """Something that happened which partners may hear of (``order.paid``, ...).

    Written in the same database transaction as the change it reports, so an event exists if and
    only if the change does. ``sequence`` numbers the events of one object 1, 2, 3, ... so a
    receiver can put out-of-order deliveries back in order.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("evt"))
    type = models.CharField(max_length=100, db_index=True)
    object_id = models.CharField(max_length=ID_MAX_LENGTH)
    sequence = models.PositiveIntegerField()
    data = models.JSONField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    # The webhook body, serialised once at publication so every attempt signs the same bytes.
    body = models.TextField(blank=True, default="", editable=False)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ("-created", "-id")
        constraints = [
            models.UniqueConstraint(fields=["object_id", "sequence"], name="event_sequence_unique")
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.object_id}#{self.sequence}"


class EventRecipient(models.Model):
    """A partner that may see an event (and whose webhook endpoints receive it)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="recipients")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "partner"], name="event_recipient_once")
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.partner_id}"


# The webhook models live with the rest of webhooks; importing them here is what registers
# them with Django under this app (label ``partners``). Imported last: they refer to the
# models above.
from partners.webhooks.models import (  # noqa: E402
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "APIKey",
    "Enrollment",
    "Event",
    "EventRecipient",
    "Partner",
    "TenantQuerySet",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
