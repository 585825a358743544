from django.urls import path
from rest_framework.routers import SimpleRouter

from orders.api import views
from orders.api.feed import live_session_feed

router = SimpleRouter(trailing_slash=False)
router.register("products", views.ProductViewSet, basename="product")
router.register("live-sessions", views.LiveSessionViewSet, basename="live-session")
router.register("orders", views.OrderViewSet, basename="order")

urlpatterns = [
    # Server-Sent Events, served without a web worker under ASGI (orders/api/feed.py)
    path("live-sessions/<str:pk>/feed", live_session_feed, name="live-session-feed"),
    *router.urls,
]
