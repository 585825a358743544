import django_filters

from partners.choices import PartnerKind, PartnerStatus
from partners.models import Partner


class PartnerFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=PartnerKind.choices)
    status = django_filters.ChoiceFilter(choices=PartnerStatus.choices)
    name = django_filters.CharFilter(lookup_expr="icontains")
    fulfillment_partner = django_filters.CharFilter(field_name="fulfillment_partner_id")

    class Meta:
        model = Partner
        fields = ["kind", "status", "name", "fulfillment_partner"]
