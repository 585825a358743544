"""Production's URL conf plus the order rush's baseline endpoint (``bench/endpoints.py``).

Mounted only by ``bench/settings.py`` (``ROOT_URLCONF``); ``livecommerce/urls.py`` knows
nothing of it. The endpoint goes first: production's last pattern answers anything else 404.
"""

from django.urls import path

from bench.endpoints import PingInsertView
from livecommerce.urls import handler400, handler403, handler404, handler500
from livecommerce.urls import urlpatterns as production_urlpatterns

urlpatterns = [
    path("api/v1/_bench/ping-insert", PingInsertView.as_view()),
    *production_urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
