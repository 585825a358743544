"""Bearer API-key authentication on djangorestframework-api-key's hashed keys.

The library's ``HasAPIKey`` is a permission (a missing key would be 403 and ``request.auth``
unset); this authentication class gives 401 with ``WWW-Authenticate`` instead, sets
``request.user`` to a ``Caller`` and ``request.auth`` to the key, and refuses a suspended
partner's keys with 403.
"""

from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from partners.choices import PartnerKind, StaffRole
from partners.models import APIKey, Partner
from partners.throttling import FailedAuthenticationThrottle


@dataclass(frozen=True)
class Caller:
    """Who is calling: a partner, or a staff member with a role, through one API key."""

    api_key_id: str
    partner: Partner | None = None
    role: str = ""

    is_authenticated = True
    is_anonymous = False

    @property
    def is_staff(self) -> bool:
        return bool(self.role)

    @property
    def kind(self) -> str:
        return self.partner.kind if self.partner else ""

    def is_role(self, *roles: str) -> bool:
        return self.role in roles

    def is_kind(self, *kinds: str) -> bool:
        return self.partner is not None and self.partner.kind in kinds

    @property
    def is_ops(self) -> bool:
        return self.role == StaffRole.OPS

    @property
    def is_finance(self) -> bool:
        return self.role == StaffRole.FINANCE

    @property
    def is_host_app(self) -> bool:
        return self.is_kind(PartnerKind.HOST_APP)

    @property
    def is_fulfillment(self) -> bool:
        return self.is_kind(PartnerKind.FULFILLMENT)

    def __str__(self) -> str:
        return f"staff:{self.role}" if self.role else f"partner:{self.partner_id}"

    @property
    def partner_id(self) -> str | None:
        return self.partner.pk if self.partner else None


class APIKeyAuthentication(authentication.BaseAuthentication):
    """One authentication per HTTP request, whoever asks first.

    The idempotency layer authenticates a POST before the view does (it must know the caller
    before replaying anything); the outcome, a caller or a refusal, is kept on the Django request
    so the view's authentication reuses it: one key lookup per request, and one failed attempt
    counted once against the address's limit.
    """

    keyword = "Bearer"
    OUTCOME_ATTR = "_livecommerce_authentication"

    def authenticate(self, request):
        http_request = getattr(request, "_request", request)
        outcome = getattr(http_request, self.OUTCOME_ATTR, None)
        if outcome is None:
            try:
                outcome = self._authenticate(request)
            except exceptions.APIException as refusal:
                outcome = refusal
            setattr(http_request, self.OUTCOME_ATTR, outcome)
        if isinstance(outcome, exceptions.APIException):
            raise outcome
        return outcome or None

    def _authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return ()  # not ours: kept as "no outcome" (falsy), answered as None
        # Failed attempts are counted per client address; over the limit, 429 before any lookup.
        throttle = FailedAuthenticationThrottle(request)
        throttle.check()
        try:
            api_key = self._key_from(header)
        except exceptions.AuthenticationFailed:
            throttle.failed()
            raise
        return self._caller(api_key)

    def _key_from(self, header: list[bytes]) -> APIKey:
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'.")
        try:
            raw_key = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        try:
            api_key = APIKey.objects.get_from_key(raw_key)
        except APIKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.") from None
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        return api_key

    def _caller(self, api_key: APIKey):
        if api_key.partner is not None and not api_key.partner.is_active:
            raise exceptions.PermissionDenied("The partner this key belongs to is suspended.")
        self._touch(api_key)
        caller = Caller(api_key_id=api_key.pk, partner=api_key.partner, role=api_key.role)
        return caller, api_key

    @staticmethod
    def _touch(api_key: APIKey) -> None:
        # Record last use at most once a minute: a write per request would cost every call.
        now = timezone.now()
        if api_key.last_used is None or (
            now - api_key.last_used > settings.API_KEY_LAST_USED_RESOLUTION
        ):
            APIKey.objects.filter(pk=api_key.pk).update(last_used=now)
            api_key.last_used = now

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'
