"""Shared list filters.

``IsoDateTimeFilter`` is django-filter's, with the value converted to UTC before it reaches the
database: Python accepts UTC offsets up to 23:59 but PostgreSQL only up to 15:59, so
``?created_after=2026-01-01T00:00:00+17:25`` used to fail in the database with a 500 (found by
fuzzing). A time that does not exist in UTC (year 1 minus an offset) is a 400.
"""

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UTCIsoDateTimeField(IsoDateTimeField):
    default_error_messages = {"overflow": "The time is out of range."}

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["overflow"], code="overflow") from None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField
