"""Cursor pagination for every list: ``{"next", "previous", "results"}``, ``page_size`` ≤ 200."""

from datetime import UTC, datetime

from django import forms
from django.core.exceptions import FieldDoesNotExist, ValidationError
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ParseError

from livecommerce.errors import AppValidationError
from livecommerce.filters import UTCIsoDateTimeField

PAGE_SIZE_ATTR = "page_size"
# Every list of objects with a ``created`` time takes these (the one place they are applied;
# filter sets do not declare them).
CREATED_RANGE = {"created_after": "gte", "created_before": "lt"}


def has_created_time(model) -> bool:
    return any(field.name == "created" for field in model._meta.get_fields())


class CursorPagination(pagination.CursorPagination):
    """Newest first by default; a view may set ``ordering``. Cursors are opaque.

    A cursor the service did not write is the caller's mistake, so it is a 400 (``parse_error``):
    DRF answers an undecodable one with 404 (as if the list did not exist), and one whose
    position is not a value of the ordering field (``p=not-a-date``, made by hand) reached the
    database as a filter and answered 500.
    """

    page_size = 50
    page_size_query_param = PAGE_SIZE_ATTR
    max_page_size = 200
    ordering = ("-created", "-id")

    invalid_cursor_message = "Invalid cursor: pass back a `next` or `previous` URL as given."

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(self.created_range(queryset, request), request, view)

    @staticmethod
    def created_range(queryset, request):
        """``?created_after=`` (inclusive) and ``?created_before=`` (exclusive) on any list of
        objects with a ``created`` time, also the nested lists of an object's actions (an
        order's events, a partner's keys) that no filter set covers."""
        if not has_created_time(queryset.model):
            return queryset
        for param, lookup in CREATED_RANGE.items():
            raw = request.query_params.get(param)
            if not raw:  # absent or empty: no bound, as django-filter's filters treat it
                continue
            try:
                value = UTCIsoDateTimeField(required=True).clean(raw)
            except forms.ValidationError as exc:
                raise AppValidationError(
                    exc.code or "invalid",
                    f"{param} must be an RFC 3339 time, e.g. 2026-11-23T12:00:00Z.",
                    attr=param,
                ) from None
            queryset = queryset.filter(**{f"created__{lookup}": value})
        return queryset

    def get_page_size(self, request):
        """``page_size`` from 1 to 200, or the default when absent; anything else is a 400.

        DRF falls back to the default for ``page_size=0``, ``-1``, ``null`` or ``abc``, so a
        client's mistake went unnoticed; the contract bounds it, and the schema says so.
        """
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        # ASCII digits only, and few: '²'.isdigit() is True but int('²') raises, and int() of
        # thousands of digits is slow or refused.
        if not (raw.isascii() and raw.isdecimal() and len(raw) <= 4) or not (
            1 <= int(raw) <= self.max_page_size
        ):
            raise AppValidationError(
                "invalid_page_size",
                f"page_size must be a whole number from 1 to {self.max_page_size}; "
                f"got {raw[:20]!r}. Leave it out for {self.page_size}.",
                attr=PAGE_SIZE_ATTR,
            )
        return int(raw)

    def get_paginated_response_schema(self, schema):
        example = "https://api.example.com/api/v1/orders?cursor=cD0yMDI2LTExLTIz"
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next page, or null on the last one.",
                    "example": example,
                },
                "previous": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The previous page, or null on the first one.",
                    "example": None,
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                    "default": self.page_size,
                }
                parameter["description"] = (
                    f"Results per page, 1 to {self.max_page_size} (default {self.page_size})."
                )
        return parameters

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except (NotFound, UnicodeError):
            raise ParseError(self.invalid_cursor_message) from None
        if cursor is not None and cursor.position is not None:
            cursor = cursor._replace(position=self._checked_position(cursor.position))
        return cursor

    def _checked_position(self, position: str) -> str:
        """The position as the ordering field's value; times in UTC (PostgreSQL refuses
        offsets beyond 15:59 that Python accepts, and a time before year 1 in UTC)."""
        name = self.ordering[0].lstrip("-")
        try:
            field = self._model._meta.get_field(name)
        except (AttributeError, FieldDoesNotExist):
            return position
        try:
            value = field.to_python(position)
            if isinstance(value, datetime) and value.tzinfo is not None:
                return value.astimezone(UTC).isoformat()
        except (ValidationError, OverflowError, ValueError, TypeError):
            raise ParseError(self.invalid_cursor_message) from None
        return position
