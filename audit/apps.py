from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Who changed partners, API keys and commission plans: the audit trail."""

    name = "audit"
    verbose_name = "Audit trail"
