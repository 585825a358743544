"""Request parsers."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from livecommerce.json_input import BODY_MAX_DEPTH, FreeFormError, check_json


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing (400 ``parse_error``) what no field of the API can take.

    ``json.loads`` answers ``[[[[...]]]]`` nested some thousand levels deep with RecursionError,
    which DRF does not catch: a body well under the size limit was a 500 (found by the security
    tests). It is malformed input like any other, so it is a ``parse_error``; so is a body nested
    deeper than ``BODY_MAX_DEPTH`` and one holding a lone surrogate (``"\\ud800"``), which is
    not Unicode: it reached the database and answered 500 (``livecommerce/json_input.py``).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
        try:
            check_json(data, max_depth=BODY_MAX_DEPTH)
        except FreeFormError as exc:
            raise ParseError(f"JSON parse error - {exc.detail}") from None
        return data
