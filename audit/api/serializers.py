from rest_framework import serializers

from audit.models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    changes = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField(allow_null=True)),
        help_text='The fields set, {"field": [old, new]}; secrets never appear.',
    )

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created",
            "api_key",
            "actor",
            "action",
            "object_type",
            "object_id",
            "changes",
        ]
        read_only_fields = fields
