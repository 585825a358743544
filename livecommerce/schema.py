"""OpenAPI generation: the contract's error shapes and headers on every operation.

drf-standardized-errors adds the 400/401/403/404/405/406/415/429 responses it can infer. On top
of that every POST documents ``Idempotency-Key`` with its 409/422 answers and 413 for an oversized
body, and an action lists its domain errors with ``error_responses(...)``. Every operation says
which callers may use it (from its permission), and every list its ``page_size`` bounds.

The postprocessing hooks below work on whatever the schema contains, so an endpoint added later
gets the same treatment: request bodies refuse unknown fields (``additionalProperties: false``
and the ``unknown_field`` error in their 400), ``nullable`` always sits beside a ``type`` (as
OpenAPI 3.0 requires), and operations are ordered by their tag, as a host app meets them.
"""

import copy
import re

from drf_spectacular.plumbing import get_view_model
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema
from rest_framework import serializers

from livecommerce.errors import ERROR_CODES
from livecommerce.pagination import has_created_time


class ErrorItemSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    """The contract's error body."""

    type = serializers.ChoiceField(choices=["validation_error", "client_error", "server_error"])
    errors = ErrorItemSerializer(many=True)


IDEMPOTENCY_KEY_MAX_LENGTH = 255
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name="Idempotency-Key",
    type={"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH},
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "1 to 255 characters. The same key with the same body from the same partner (any of "
        "its API keys; for staff, the same key) within 24 h replays the first response with "
        "`Idempotent-Replayed: true`; an empty or longer key is a 400 "
        "`idempotency_key_invalid`. A secret shown once in the first answer (an API key, a "
        "webhook signing secret) is replayed as null."
    ),
)


def _example(code: str, status: int) -> OpenApiExample:
    # A 400 with a domain code is raised as a validation error on the offending field.
    error_type = "validation_error" if status == 400 else "client_error"
    return OpenApiExample(
        code,
        value={
            "type": error_type,
            "errors": [{"code": code, "detail": ERROR_CODES[code][1], "attr": None}],
        },
        response_only=True,
        status_codes=[str(status)],
    )


def error_responses(*codes: str) -> dict[int, OpenApiResponse]:
    """Responses for the given domain error codes, grouped by status, each with an example."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERROR_CODES[code][0], []).append(code)
    return {
        status: OpenApiResponse(
            ErrorSerializer,
            description="; ".join(f"`{code}`: {ERROR_CODES[code][1]}" for code in status_codes),
            examples=[_example(code, status) for code in status_codes],
        )
        for status, status_codes in by_status.items()
    }


class ClientError400ItemSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["parse_error", "idempotency_key_invalid"])
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ClientError400Serializer(serializers.Serializer):
    """A POST's 400 that is not about a field: malformed JSON, or a bad Idempotency-Key."""

    type = serializers.ChoiceField(choices=["client_error"])
    errors = ClientError400ItemSerializer(many=True)


class AutoSchema(StandardizedErrorsAutoSchema):
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is not None and (callers := self._callers()):
            operation["x-callers"] = callers
            description = operation.get("description", "")
            operation["description"] = f"{description}\n\n**Who may call:** {callers}.".strip()
        return operation

    def _callers(self) -> str:
        """Who may call the operation, from the permission the view applies to it."""
        try:
            permissions = self.view.get_permissions()
        except Exception:  # a view whose permissions need a request: say nothing
            return ""
        return "; ".join(str(text) for p in permissions if (text := getattr(p, "callers", None)))

    def _get_examples(self, serializer, direction, media_type, status_code=None, extras=None):
        """An example written as the whole list (or page) is not listed a second time.

        drf-spectacular wraps a list endpoint's examples as one item of a list or page; an
        example that already is the list (``[{...}, {...}]``) or page (``{"results": ...}``)
        came out as a list inside a list, invalid against its own schema.
        """
        examples = super()._get_examples(serializer, direction, media_type, status_code, extras)
        for example in (examples or {}).values():
            value = example.get("value")
            if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
                example["value"] = value[0]
            elif isinstance(value, dict) and isinstance(value.get("results"), list):
                inner = value["results"]
                if len(inner) == 1 and isinstance(inner[0], dict) and "results" in inner[0]:
                    example["value"] = inner[0]
        return examples

    def _lists_created_objects(self) -> bool:
        """A paginated list of a model with a ``created`` time: CursorPagination applies
        ``created_after``/``created_before`` to it, so it documents them."""
        if not self._is_paginated_list():
            return False
        model = get_view_model(self.view, emit_warnings=False)
        return model is not None and has_created_time(model)

    def _get_pagination_parameters(self):
        parameters = super()._get_pagination_parameters()
        if self._lists_created_objects():
            for name, meaning in (
                ("created_after", "Created at or after this time (RFC 3339)."),
                ("created_before", "Created before this time (RFC 3339)."),
            ):
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "description": meaning,
                        "schema": {"type": "string", "format": "date-time"},
                    }
                )
        return parameters

    def _is_paginated_list(self) -> bool:
        return self.method == "GET" and self._is_list_view() and self._get_paginator() is not None

    def _should_add_validation_error_response(self) -> bool:
        return super()._should_add_validation_error_response() or self._is_paginated_list()

    def _get_validation_error_codes_by_field(self, data_fields):
        codes = super()._get_validation_error_codes_by_field(data_fields)
        if self._is_paginated_list():
            codes["page_size"].add("invalid_page_size")
        if self._lists_created_objects():
            for name in ("created_after", "created_before"):
                codes[name].update({"invalid", "overflow"})
        return codes

    def _get_http400_serializer(self):
        serializer = super()._get_http400_serializer()
        if self.method == "POST" and "client_error" in serializer.serializers:
            # The idempotency middleware answers an empty or over-long key with a client_error.
            serializer.serializers["client_error"] = ClientError400Serializer
        return serializer

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_PARAMETER)
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction=direction)
        if direction == "response" and self.method == "POST":
            for status, response in error_responses(
                "idempotency_key_in_use", "idempotency_key_reused", "request_too_large"
            ).items():
                key = str(status)
                if key in responses:
                    continue
                responses[key] = self._get_response_for_code(response, key)
        return responses


# --- Postprocessing hooks (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) -----------------------

UNKNOWN_FIELD_ERROR = "UnknownFieldError"
UNKNOWN_FIELD_COMPONENT = {
    "type": "object",
    "description": (
        "A field the endpoint does not take (`attr` names it, e.g. `shiping_amount` or "
        "`lines.0.quantiy`); the detail suggests the field meant."
    ),
    "properties": {
        "attr": {"type": "string", "example": "shiping_amount"},
        "code": {"type": "string", "enum": ["unknown_field"]},
        "detail": {
            "type": "string",
            "example": "Unknown field 'shiping_amount'. Did you mean 'shipping_amount'?",
        },
    },
    "required": ["attr", "code", "detail"],
}


def _ref_target(schema: dict, node):
    if isinstance(node, dict) and "$ref" in node:
        return schema["components"]["schemas"].get(node["$ref"].rsplit("/", 1)[-1])
    return node


def _walk(node, visit):
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)


def postprocess_nullable(result, generator, request, public):
    """``nullable`` only beside a ``type`` (OpenAPI 3.0; Redocly's nullable-type-sibling).

    drf-spectacular writes ``{"allOf": [{"$ref": ...}], "nullable": true}`` for a nullable
    reference: the referenced component's type is written beside it. A nullable "anything"
    (``{"nullable": true}``) already admits null, so the keyword goes.
    """
    components = result.get("components", {}).get("schemas", {})

    def referenced_type(node) -> str | None:
        for keyword in ("allOf", "oneOf", "anyOf"):
            for branch in node.get(keyword, []):
                target = components.get(branch.get("$ref", "").rsplit("/", 1)[-1], {})
                if target.get("type"):
                    return target["type"]
                if "enum" in target and all(isinstance(v, str) for v in target["enum"]):
                    return "string"
        return None

    def visit(node):
        if node.get("nullable") and "type" not in node:
            found = referenced_type(node)
            if found:
                node["type"] = found
            elif not any(k in node for k in ("allOf", "oneOf", "anyOf", "$ref", "enum")):
                del node["nullable"]

    _walk(result, visit)
    return result


def postprocess_strict_input(result, generator, request, public):
    """Request bodies of known shape refuse fields they do not name, as the service does.

    Every object schema reachable from a JSON request body, through properties and array
    items, gets ``additionalProperties: false`` unless it says otherwise (free-form JSON fields
    are ``additionalProperties: {}`` and stay free-form). The 400 validation errors of those
    operations list ``unknown_field`` beside the per-field errors.
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    seen: set[int] = set()

    def close(node):
        node = _ref_target(result, node)
        if not isinstance(node, dict) or id(node) in seen:
            return
        seen.add(id(node))
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.get("properties", {}).values():
            close(value)
        if isinstance(node.get("items"), dict):
            close(node["items"])
        for keyword in ("allOf", "oneOf", "anyOf"):
            for branch in node.get(keyword, []):
                close(branch)

    def add_unknown_field(node, depth=0):
        node = _ref_target(result, node)
        if not isinstance(node, dict) or depth > 4:
            return
        items = node.get("properties", {}).get("errors", {}).get("items")
        errors = _ref_target(result, items) if items else None
        if isinstance(errors, dict) and "oneOf" in errors:
            ref = {"$ref": f"#/components/schemas/{UNKNOWN_FIELD_ERROR}"}
            if ref not in errors["oneOf"]:
                errors["oneOf"].append(ref)
                # attr no longer tells the branches apart: the code does (unknown_field)
                errors.pop("discriminator", None)
        for branch in node.get("oneOf", []):
            add_unknown_field(branch, depth + 1)

    strict = False
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if method not in {"post", "put", "patch"} or not body:
                continue
            strict = True
            close(body.get("schema"))
            target = _ref_target(result, body.get("schema")) or {}
            if target.get("required") or target.get("oneOf"):
                operation["requestBody"]["required"] = True  # {} would be refused
            error400 = operation.get("responses", {}).get("400", {})
            for media in error400.get("content", {}).values():
                add_unknown_field(media.get("schema"))
    if strict:
        schemas[UNKNOWN_FIELD_ERROR] = UNKNOWN_FIELD_COMPONENT
    return result


def postprocess_tag_order(result, generator, request, public):
    """Paths in the order of their first tag in ``TAGS`` (then as they were), so Swagger UI
    and ReDoc show sections as a host app meets them rather than alphabetically."""
    order = {tag["name"]: n for n, tag in enumerate(result.get("tags", []))}

    def rank(item):
        _, operations = item
        tags = [t for op in operations.values() if isinstance(op, dict) for t in op.get("tags", [])]
        return order.get(tags[0], len(order)) if tags else len(order)

    result["paths"] = dict(sorted(result.get("paths", {}).items(), key=rank))
    return result


HASHED_ENUM = re.compile(r"^[A-Z][A-Za-z]*[0-9a-f]{3}Enum$")


def postprocess_stable_enum_names(result, generator, request, public):
    """No enum component named by a hash (``AttrB03Enum``) reaches a generated client.

    drf-spectacular names an enum after its field and, when fields of one name carry different
    choices in different components (the per-field error components' ``attr`` and ``code``),
    after a hash of the choices, which changes whenever a choice does. Such an enum is written
    inline where it is used instead, so clients name it after its place (``...ErrorComponent``
    ``Attr``); the domain's own enums keep their names from ``ENUM_NAME_OVERRIDES``.
    """
    schemas = result.get("components", {}).get("schemas", {})
    hashed = {name: schemas.pop(name) for name in list(schemas) if HASHED_ENUM.match(name)}
    if not hashed:
        return result

    def visit(node):
        ref = node.get("$ref", "")
        name = ref.rsplit("/", 1)[-1]
        if ref.startswith("#/components/schemas/") and name in hashed:
            del node["$ref"]
            node.update(copy.deepcopy(hashed[name]))

    _walk(result, visit)
    return result


SERVICE_UNAVAILABLE_RESPONSE = {
    "description": (
        "`service_unavailable`: the database or the broker this request needs is unreachable "
        "for a moment. Nothing was done that was not answered; retry after `Retry-After` "
        "seconds (with the same `Idempotency-Key` for a POST)."
    ),
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 0},
        }
    },
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["type", "errors"],
                "properties": {
                    "type": {"type": "string", "enum": ["server_error"]},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["code", "detail", "attr"],
                            "properties": {
                                "code": {"type": "string", "enum": ["service_unavailable"]},
                                "detail": {"type": "string"},
                                "attr": {"type": "string", "nullable": True},
                            },
                        },
                    },
                },
            },
            "example": {
                "type": "server_error",
                "errors": [
                    {
                        "code": "service_unavailable",
                        "detail": ERROR_CODES["service_unavailable"][1],
                        "attr": None,
                    }
                ],
            },
        }
    },
}


def postprocess_service_unavailable(result, generator, request, public):
    """Every API operation may answer 503 ``service_unavailable`` with ``Retry-After`` while
    the database or broker is away (``livecommerce.errors``), so each one documents it."""
    components = result.setdefault("components", {}).setdefault("responses", {})
    components["ServiceUnavailable"] = SERVICE_UNAVAILABLE_RESPONSE
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if method in {"get", "post", "put", "patch", "delete"} and isinstance(operation, dict):
                operation.setdefault("responses", {}).setdefault(
                    "503", {"$ref": "#/components/responses/ServiceUnavailable"}
                )
    return result
