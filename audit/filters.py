import django_filters

from audit.models import AuditEntry


class AuditEntryFilter(django_filters.FilterSet):
    object_id = django_filters.CharFilter(label="Entries about this object")
    object_type = django_filters.CharFilter(label="partner, apikey, enrollment, commissionplan")
    action = django_filters.CharFilter()
    api_key = django_filters.CharFilter(label="Changes made with this API key")

    class Meta:
        model = AuditEntry
        fields = ["object_id", "object_type", "action", "api_key"]
