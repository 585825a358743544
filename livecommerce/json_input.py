"""Free-form JSON taken from callers: one set of rules at the edge, the same on every database.

A field that takes arbitrary JSON (an order's ``shipping_address``) is stored as is, so what it
may hold is decided here, before any database sees it:

- valid Unicode: no lone surrogate (``"\\ud800"``). Python's ``json`` decodes one into a ``str``
  that no UTF-8 encoder accepts: PostgreSQL's driver raised at the insert (500), and SQLite's
  JSON column stored the escaped text, so every later list that read the row answered 500;
- no NUL character (PostgreSQL's ``jsonb`` refuses ``\\u0000``);
- nested at most ``FREE_FORM_MAX_DEPTH`` (10) levels, so nothing downstream recurses deeply;
- at most ``FREE_FORM_MAX_BYTES`` (4 KiB) once serialised.

The JSON parser applies the Unicode rule to the whole body (every string field, not only the
free-form ones) and caps nesting at ``BODY_MAX_DEPTH``; ``FreeFormJSONField`` applies all four
rules to one field, with a 400 naming the field.
"""

import json

from rest_framework import serializers

FREE_FORM_MAX_DEPTH = 10
FREE_FORM_MAX_BYTES = 4096
# No request of the API nests deeper than this; a deeper body is refused before any field sees it.
BODY_MAX_DEPTH = 32


class FreeFormError(ValueError):
    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_json(value, *, max_depth: int, nul_allowed: bool = True) -> None:
    """Walk ``value`` without recursion; raise ``FreeFormError`` at the first broken rule."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise FreeFormError(
                    "too_deep", f"JSON may be nested at most {max_depth} levels deep."
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, depth))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if _has_lone_surrogate(item):
                raise FreeFormError(
                    "invalid_unicode", "Strings must be valid Unicode (no lone surrogates)."
                )
            if not nul_allowed and "\x00" in item:
                raise FreeFormError(
                    "null_characters_not_allowed", "Null characters are not allowed."
                )


class FreeFormJSONField(serializers.DictField):
    """A JSON object of the caller's own shape, within the rules of this module."""

    def __init__(self, *, max_depth=FREE_FORM_MAX_DEPTH, max_bytes=FREE_FORM_MAX_BYTES, **kwargs):
        self.max_depth = max_depth
        self.max_bytes = max_bytes
        kwargs.setdefault(
            "help_text",
            f"A JSON object: at most {max_depth} levels deep and {max_bytes} bytes, "
            "valid Unicode, no NUL characters.",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            check_json(value, max_depth=self.max_depth, nul_allowed=False)
        except FreeFormError as exc:
            raise serializers.ValidationError(exc.detail, code=exc.code) from None
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
        if size > self.max_bytes:
            raise serializers.ValidationError(
                f"At most {self.max_bytes} bytes of JSON (this is {size}).", code="too_large"
            )
        return value
