import django_filters
from django.db.models import Exists, OuterRef, Q

from commissions.choices import AdjustmentKind, EntryKind
from commissions.models import Adjustment, CommissionPlan, LedgerEntry, LedgerLine
from livecommerce.filters import IsoDateTimeFilter


class CommissionPlanFilter(django_filters.FilterSet):
    host_app = django_filters.CharFilter(field_name="host_app_id")
    brand = django_filters.CharFilter(field_name="brand_id")
    currency = django_filters.CharFilter()
    category = django_filters.CharFilter()
    in_force_at = IsoDateTimeFilter(
        method="filter_in_force_at", label="Plans in force at this time"
    )

    class Meta:
        model = CommissionPlan
        fields = ["host_app", "brand", "currency", "category"]

    def filter_in_force_at(self, queryset, name, value):
        return queryset.filter(effective_from__lte=value).filter(
            Q(effective_to__isnull=True) | Q(effective_to__gt=value)
        )


class LedgerEntryFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=EntryKind.choices)
    order = django_filters.CharFilter(field_name="order_id")
    account = django_filters.CharFilter(
        method="filter_account", label="Entries touching this account"
    )
    partner = django_filters.CharFilter(
        method="filter_partner", label="Entries touching this partner's accounts (staff)"
    )
    currency = django_filters.CharFilter()

    class Meta:
        model = LedgerEntry
        fields = ["kind", "order", "currency"]

    def filter_account(self, queryset, name, value):
        return queryset.filter(
            Exists(LedgerLine.objects.filter(entry_id=OuterRef("pk"), account_id=value))
        )

    def filter_partner(self, queryset, name, value):
        # Among the lines the caller may read: a partner asking about another finds nothing.
        lines = LedgerLine.objects.visible_to(getattr(self.request, "user", None))
        return queryset.filter(Exists(lines.filter(entry_id=OuterRef("pk"), partner_id=value)))


class AdjustmentFilter(django_filters.FilterSet):
    partner = django_filters.CharFilter(field_name="partner_id")
    currency = django_filters.CharFilter()
    kind = django_filters.ChoiceFilter(choices=AdjustmentKind.choices)

    class Meta:
        model = Adjustment
        fields = ["partner", "currency", "kind"]
