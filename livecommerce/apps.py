from django.apps import AppConfig


class LiveCommerceConfig(AppConfig):
    """Shared API plumbing; holds the idempotency records."""

    name = "livecommerce"
    verbose_name = "API plumbing"

    def ready(self) -> None:
        from livecommerce import logs, metrics  # noqa: F401  (record factory, Celery signals)

        metrics.register()
