"""OpenAPI description of the Bearer API-key authentication, and of the directory entry."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension


class PartnerDirectoryEntryScheme(OpenApiSerializerExtension):
    """A directory entry is exactly ``id``, ``kind``, ``name``: closed, so a full partner record
    (which a partner sees for itself) never also matches it."""

    target_class = "partners.api.serializers.PartnerDirectoryEntrySerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "partners.authentication.APIKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer <key>`. Keys are shown once.",
        }
