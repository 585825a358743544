from django.urls import path
from rest_framework.routers import SimpleRouter

from partners.api import views
from partners.webhooks.api import views as webhook_views

router = SimpleRouter(trailing_slash=False)
router.register("partners", views.PartnerViewSet, basename="partner")
router.register("api-keys", views.APIKeyViewSet, basename="api-key")
router.register(
    "webhook-endpoints", webhook_views.WebhookEndpointViewSet, basename="webhook-endpoint"
)
router.register(
    "webhook-deliveries", webhook_views.WebhookDeliveryViewSet, basename="webhook-delivery"
)
router.register("events", webhook_views.EventViewSet, basename="event")

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    *router.urls,
]
