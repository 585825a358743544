"""``/healthz`` (the process is up) and ``/readyz`` (database and broker reachable).

Readiness uses django-health-check's view and database check, plus a broker check of our own:
the library's Celery check pings workers, while readiness of the web process needs only the
broker to accept messages.
"""

import dataclasses

from django.conf import settings
from django.http import JsonResponse
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (tasks run in-process when none is configured)."""

    def run(self) -> None:
        if not settings.CELERY_BROKER_URL:
            return
        from livecommerce.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:  # kombu raises transport-specific errors
            raise ServiceUnavailable("Broker unreachable") from exc


def healthz(request):
    return JsonResponse({"status": "ok"})


class ReadyView(HealthCheckView):
    checks = (Database, Broker)

    async def get(self, request, *args, **kwargs):
        # Always JSON, whatever the Accept header says: probes and people read the same thing.
        request.GET = request.GET.copy()
        request.GET["format"] = "json"
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:
            response.status_code = 503  # not ready: a load balancer should route elsewhere
        return response
