import django_filters

from partners.models import Event
from partners.webhooks.choices import EVENT_TYPES, WebhookDeliveryStatus, WebhookEndpointStatus
from partners.webhooks.models import WebhookDelivery, WebhookEndpoint


class WebhookEndpointFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=WebhookEndpointStatus.choices)

    class Meta:
        model = WebhookEndpoint
        fields = ["status"]


class WebhookDeliveryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=WebhookDeliveryStatus.choices)
    event = django_filters.CharFilter(field_name="event_id")
    event_type = django_filters.CharFilter(field_name="event__type")

    class Meta:
        model = WebhookDelivery
        fields = ["status", "event"]


class EventFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(
        help_text="An event type, e.g. " + ", ".join(EVENT_TYPES[:3]) + ", ..."
    )
    object_id = django_filters.CharFilter(help_text="The id of the object the events are about")

    class Meta:
        model = Event
        fields = ["type", "object_id"]
