from django.apps import AppConfig


class PartnersConfig(AppConfig):
    """The base app: partners, staff roles, API keys, enrollments and webhook endpoints."""

    name = "partners"

    def ready(self) -> None:
        from partners import schema  # noqa: F401  registers the OpenAPI auth extension
        from partners.webhooks import tasks  # noqa: F401  registers the send task by its name
