"""Request parsers."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, where a document nested too deeply for Python's decoder is a 400.

    ``json.loads`` answers ``[[[[...]]]]`` nested some thousand levels deep with RecursionError,
    which DRF does not catch: a body well under the size limit was a 500 (found by the security
    tests). It is malformed input like any other, so it is a ``parse_error``.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
