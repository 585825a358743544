from django.apps import AppConfig


class LiveCommerceConfig(AppConfig):
    """Shared API plumbing; holds the idempotency records."""

    name = "livecommerce"
    verbose_name = "API plumbing"
