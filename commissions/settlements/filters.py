import django_filters

from commissions.settlements.models import (
    Settlement,
    SettlementRun,
    SettlementRunStatus,
    SettlementStatus,
)


class SettlementFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=SettlementStatus.choices)
    currency = django_filters.CharFilter()
    partner = django_filters.CharFilter(field_name="partner_id")
    run = django_filters.CharFilter(field_name="run_id")
    period_end = django_filters.DateFilter()
    period_end_after = django_filters.DateFilter(field_name="period_end", lookup_expr="gte")
    period_end_before = django_filters.DateFilter(field_name="period_end", lookup_expr="lte")

    class Meta:
        model = Settlement
        fields = ["status", "currency", "partner", "run", "period_end"]


class SettlementRunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=SettlementRunStatus.choices)
    currency = django_filters.CharFilter()
    period_end = django_filters.DateFilter()
    period_end_after = django_filters.DateFilter(field_name="period_end", lookup_expr="gte")
    period_end_before = django_filters.DateFilter(field_name="period_end", lookup_expr="lte")

    class Meta:
        model = SettlementRun
        fields = ["status", "currency", "period_end"]
