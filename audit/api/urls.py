from rest_framework.routers import SimpleRouter

from audit.api import views

router = SimpleRouter(trailing_slash=False)
router.register("audit-log", views.AuditEntryViewSet, basename="audit-entry")

urlpatterns = router.urls
