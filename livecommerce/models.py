"""Idempotency records: the first response to each ``Idempotency-Key``, per caller's key space."""

from django.db import models


class IdempotencyRecord(models.Model):
    """What a POST with an ``Idempotency-Key`` answered, so a retry gets the same answer.

    A record is created (``in_progress``) in the request's transaction and completed with the
    answer before that transaction commits, so the answer is kept if and only if the request's
    writes are; a concurrent request with the same key gets 409 (an advisory lock on the key).
    """

    credential = models.CharField(
        max_length=64,
        help_text="SHA-256 of the key space: partner:<id> (any of its keys) or key:<id> (staff)",
    )
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2048)
    in_progress = models.BooleanField(default=True)
    status_code = models.PositiveSmallIntegerField(null=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(null=True)
    headers = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    locked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["credential", "key"], name="idempotency_once_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
