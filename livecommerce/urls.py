"""URLs: the API under ``/api/v1/``, its schema and docs, health, metrics and the admin."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from livecommerce import errors, health

api_v1 = [
    path("", include("partners.api.urls")),
    path("", include("orders.api.urls")),
    path("", include("commissions.api.urls")),
    path("", include("audit.api.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's settings as a script file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.ReadyView.as_view(), name="readyz"),
    path("", include("django_prometheus.urls")),
    path("admin/", admin.site.urls),
    # Anything else is a JSON 404 in the contract's format, in DEBUG too.
    re_path(r"^", errors.handler404),
]

handler400 = "livecommerce.errors.handler400"
handler403 = "livecommerce.errors.handler403"
handler404 = "livecommerce.errors.handler404"
handler500 = "livecommerce.errors.handler500"
