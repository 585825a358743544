"""Cursor pagination for every list: ``{"next", "previous", "results"}``, ``page_size`` ≤ 200."""

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Newest first by default; a view may set ``ordering``. Cursors are opaque."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-created", "-id")
