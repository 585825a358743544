"""Throttling per API key (per client address for unauthenticated calls)."""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class APIKeyRateThrottle(SimpleRateThrottle):
    """``API_KEY_RATE`` requests per key (default 6000/min); over it, 429 with ``Retry-After``.

    Counts live in the default cache: point ``CACHE_URL`` at Redis when several web processes
    serve the API, or each keeps its own count.
    """

    scope = "api_key"

    def get_rate(self):
        # Read at call time so a settings change (tests, reload) takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        ident = request.auth.pk if request.auth is not None else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
