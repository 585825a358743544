"""Reading the audit trail (staff only: the views admit no partner)."""

from django.db.models import QuerySet

from audit.models import AuditEntry


def audit_entry_list() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.all()
