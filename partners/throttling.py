"""Throttling per API key (per client address for unauthenticated calls), and of failed
authentications per client address."""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


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


class FailedAuthenticationThrottle:
    """``FAILED_AUTH_RATE`` failed authentications per client address (default 20/min).

    Counted in fixed windows in the default cache (Redis in production, so every web process
    shares the count). Once an address is over the limit, every request from it that shows a
    key is answered 429 with ``Retry-After`` until the window ends, before its key is even
    looked up: guessing keys gets nowhere, and costs the database nothing.
    """

    def __init__(self, request):
        self.ident = BaseThrottle().get_ident(request)
        self.limit, self.period = SimpleRateThrottle.parse_rate(None, settings.FAILED_AUTH_RATE)
        now = time.time()
        window = int(now // self.period)
        self.key = f"failed-auth:{self.ident}:{window}"
        self.wait = max(1, int((window + 1) * self.period - now))

    def check(self) -> None:
        if (cache.get(self.key) or 0) >= self.limit:
            raise Throttled(
                wait=self.wait,
                detail="Too many failed authentications from this address; retry later.",
            )

    def failed(self) -> None:
        if cache.add(self.key, 1, timeout=self.period + 1):
            return
        try:
            cache.incr(self.key)
        except ValueError:  # expired between add and incr
            cache.add(self.key, 1, timeout=self.period + 1)
