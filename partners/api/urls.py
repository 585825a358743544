from django.urls import path
from rest_framework.routers import SimpleRouter

from partners.api import views

router = SimpleRouter(trailing_slash=False)
router.register("partners", views.PartnerViewSet, basename="partner")
router.register("api-keys", views.APIKeyViewSet, basename="api-key")

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    *router.urls,
]
