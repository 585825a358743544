"""The audit trail: one row per change of a partner, an API key or a commission plan."""

from django.db import models

from livecommerce.ids import ID_MAX_LENGTH, IdFactory


class AuditEntry(models.Model):
    """Who changed what, and when: written by the service, in the transaction of the change.

    ``api_key`` is the id of the key the change was made with (kept as text, so the entry
    outlives the key), ``actor`` says whose it is (``staff:ops``, ``partner:prt_…``, or
    ``system`` for a management command). ``changes`` holds the fields set, ``{"field": [old,
    new]}``; secrets (a key, its hash) never appear in it. Entries are never edited.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("aud"))
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    api_key = models.CharField(max_length=ID_MAX_LENGTH, blank=True, default="", db_index=True)
    actor = models.CharField(max_length=100)
    action = models.CharField(max_length=50, db_index=True)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=ID_MAX_LENGTH, db_index=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-created", "-id")
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} {self.object_id} by {self.actor}"
