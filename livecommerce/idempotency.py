"""``Idempotency-Key`` on every POST, per credential, kept 24 hours, stored in the database.

- The same key with the same request (method, path, body) replays the first response, same
  status and body, with ``Idempotent-Replayed: true``.
- The same key with another request answers 422 ``idempotency_key_reused``.
- While the first request with the key is still running, 409 ``idempotency_key_in_use``.

It is a middleware so that every POST gets it without each view opting in. The credential is
identified by a hash of its ``Authorization`` header, so this module needs no app's models.
Responses that say nothing about the request itself (401, 403, 429, 5xx) are not kept, so the
client may retry them with the same key.

The record, the request's own writes and the answer are committed in ONE transaction. Were the
answer written after the request's writes had committed, a database lost between the two (a
restart, a failover) would leave the order made and its key still "in progress", and the retry
after ``IDEMPOTENCY_LOCK_TIMEOUT`` would make a second order (tests/system shows it). Now either
both are there and the retry is replayed, or neither is and the retry does the work. While the
first request runs it holds a transaction-level advisory lock on its key, so a second request
with the key is answered 409 at once instead of waiting on the first one's uncommitted row; a
5xx rolls back whatever the request wrote, so the client retrying it finds nothing half-done.
"""

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from livecommerce.errors import error_response
from livecommerce.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
NOT_KEPT_STATUSES = {401, 403, 429}
REPLAYED_RESPONSE_HEADERS = ("Location", "Retry-After")


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _claim(*, credential: str, key: str, request_hash: str, request) -> tuple:
    """Create the in-progress record, or return the one that holds the key already."""
    now = timezone.now()
    for _ in range(2):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    credential=credential,
                    key=key,
                    request_hash=request_hash,
                    method=request.method,
                    path=request.get_full_path()[:2048],
                    locked_at=now,
                )
            return record, True
        except IntegrityError:
            record = IdempotencyRecord.objects.filter(credential=credential, key=key).first()
            if record is None:
                continue
            expired = record.created < now - settings.IDEMPOTENCY_KEY_TTL
            abandoned = record.in_progress and record.locked_at < (
                now - settings.IDEMPOTENCY_LOCK_TIMEOUT
            )
            if expired or abandoned:
                # The first holder is gone (expired, or its process died mid-request).
                IdempotencyRecord.objects.filter(pk=record.pk, locked_at=record.locked_at).delete()
                continue
            return record, False
    return record, False


def _hold_key(credential: str, key: str) -> bool:
    """Take the key for this transaction; False if another request holds it right now."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        return True  # SQLite runs one writer at a time: the second request waits its turn
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"idempotency:{credential}:{key}"],
        )
        return bool(cursor.fetchone()[0])


def _kept_body(response) -> bytes:
    """The answer to keep for replays. A view names, in ``response.idempotency_redact``, the
    fields of its JSON answer that must never be stored (a new API key, shown once): they are
    kept, and replayed, as null."""
    fields = getattr(response, "idempotency_redact", ())
    if not fields:
        return response.content
    data = json.loads(response.content)
    for field in fields:
        if field in data:
            data[field] = None
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _in_use_response():
    response = error_response(
        "idempotency_key_in_use",
        f"A request with this {HEADER} is still being processed; retry shortly.",
    )
    response["Retry-After"] = "1"
    return response


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get(HEADER)
        authorization = request.headers.get("Authorization")
        if request.method != "POST" or key is None or not authorization:
            return self.get_response(request)
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            return error_response(
                "idempotency_key_invalid",
                f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.",
            )

        credential = _sha256(authorization.encode())
        request_hash = _sha256(
            request.method.encode(), request.get_full_path().encode(), request.body
        )
        # One transaction for the record, the request's writes and the answer (see above).
        with transaction.atomic():
            if not _hold_key(credential, key):
                return _in_use_response()
            record, created = _claim(
                credential=credential, key=key, request_hash=request_hash, request=request
            )
            if not created:
                return self._answer_existing(record, request_hash)

            response = self.get_response(request)  # an exception rolls everything back
            if response.status_code >= 500:
                transaction.set_rollback(True)  # nothing half-done for the retry to find
                return response
            if response.status_code in NOT_KEPT_STATUSES or getattr(response, "streaming", False):
                record.delete()
                return response
            record.in_progress = False
            record.status_code = response.status_code
            record.content_type = response.get("Content-Type", "")
            record.body = _kept_body(response)
            record.headers = {h: response[h] for h in REPLAYED_RESPONSE_HEADERS if h in response}
            record.save(
                update_fields=["in_progress", "status_code", "content_type", "body", "headers"]
            )
        return response

    @staticmethod
    def _answer_existing(record: IdempotencyRecord, request_hash: str):
        if record.request_hash != request_hash:
            return error_response(
                "idempotency_key_reused",
                f"This {HEADER} was used with a different request; use a new key.",
            )
        if record.in_progress:
            return _in_use_response()
        response = HttpResponse(
            bytes(record.body or b""), status=record.status_code, content_type=record.content_type
        )
        for header, value in record.headers.items():
            response[header] = value
        response[REPLAYED_HEADER] = "true"
        return response


def purge_expired(*, now=None) -> int:
    """Delete records older than the retention window; returns how many went."""
    cutoff = (now or timezone.now()) - settings.IDEMPOTENCY_KEY_TTL - timedelta(hours=1)
    deleted, _ = IdempotencyRecord.objects.filter(created__lt=cutoff).delete()
    return deleted
