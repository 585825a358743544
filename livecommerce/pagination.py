"""Cursor pagination for every list: ``{"next", "previous", "results"}``, ``page_size`` ≤ 200."""

from datetime import UTC, datetime

from django.core.exceptions import FieldDoesNotExist, ValidationError
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ParseError


class CursorPagination(pagination.CursorPagination):
    """Newest first by default; a view may set ``ordering``. Cursors are opaque.

    A cursor the service did not write is the caller's mistake, so it is a 400 (``parse_error``):
    DRF answers an undecodable one with 404 (as if the list did not exist), and one whose
    position is not a value of the ordering field (``p=not-a-date``, made by hand) reached the
    database as a filter and answered 500.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-created", "-id")
    invalid_cursor_message = "Invalid cursor: pass back a `next` or `previous` URL as given."

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

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
