from rest_framework.routers import SimpleRouter

from orders.api import views

router = SimpleRouter(trailing_slash=False)
router.register("products", views.ProductViewSet, basename="product")
router.register("live-sessions", views.LiveSessionViewSet, basename="live-session")
router.register("orders", views.OrderViewSet, basename="order")

urlpatterns = router.urls
