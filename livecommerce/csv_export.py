"""The one CSV writer of the service: every CSV download (reports, settlement lines,
statements) is written here, so each gets the same protection against formula injection.

Partner-written text (a live session's title, a partner's name, a SKU) reaches finance's
spreadsheets. A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read by Excel, LibreOffice and Google Sheets as a formula (``=HYPERLINK(...)``,
``=1+2+cmd|' /C calc'!A0``). Such a cell is written with a leading apostrophe (``'=HYPERLINK``),
which spreadsheets show as text, as OWASP's "CSV injection" page recommends.

Numbers are left alone: a cell that is a plain number (``-5.00``, ``+3``, ``-12``) is what a
refund or a reversal looks like and what finance sums; a spreadsheet reads it as the number it
is, and no formula can hide in ``^[+-]?[0-9]+(\\.[0-9]+)?$``. Anything else starting with ``-``
or ``+`` (``-1+cmd|...``) is neutralised.
"""

import csv
import re
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def neutralise(value) -> object:
    """``value`` as a CSV cell no spreadsheet runs as a formula."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose ``write`` hands back what it was given (a streaming writer)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable]) -> Iterator[str]:
    """Each row as one CSV line, every cell neutralised."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([neutralise(cell) for cell in row])


def csv_response(rows: Iterable[Iterable], *, filename: str | None = None) -> StreamingHttpResponse:
    """A streamed CSV download: the rows are written as the client reads them."""
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    if filename:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
