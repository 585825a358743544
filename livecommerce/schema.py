"""OpenAPI generation: the contract's error shapes and headers on every operation.

drf-standardized-errors adds the 400/401/403/404/405/406/415/429 responses it can infer. On top
of that every POST documents ``Idempotency-Key`` with its 409/422 answers and 413 for an oversized
body, and an action lists its domain errors with ``error_responses(...)``.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema
from rest_framework import serializers

from livecommerce.errors import ERROR_CODES


class ErrorItemSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    """The contract's error body."""

    type = serializers.ChoiceField(choices=["validation_error", "client_error", "server_error"])
    errors = ErrorItemSerializer(many=True)


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Up to 255 characters. The same key with the same body from the same partner (any of "
        "its API keys; for staff, the same key) within 24 h replays the first response with "
        "`Idempotent-Replayed: true`. A secret shown once in the first answer (an API key, a "
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
