"""``Idempotency-Key`` on every POST, per partner (staff: per key), kept 24 hours, in the database.

- The same key with the same request (method, path, body) replays the first response, same
  status and body, with ``Idempotent-Replayed: true``.
- The same key with another request answers 422 ``idempotency_key_reused``.
- While the first request with the key is still running, 409 ``idempotency_key_in_use``.

It is a middleware so that every POST gets it without each view opting in.

- **Who holds a key.** The caller is authenticated first, with the API's own authentication
  classes (DRF's ``DEFAULT_AUTHENTICATION_CLASSES``, so this module imports no app): keys are
  scoped to the partner (all of a partner's API keys share one key space, so a request retried
  with another key during a key rotation is replayed, not made twice) and, for staff, to the
  one API key. A caller that does not authenticate (a revoked or unknown key: 401; a suspended
  partner: 403) is never replayed anything and nothing is kept: the request goes on to the view,
  which answers the same 401 or 403. Responses that say nothing about the request itself (401,
  403, 429, 5xx) are not kept either, so the client may retry them with the same key.
- **No secret is kept in clear.** An answer that shows a secret once (a new API key, a webhook
  endpoint's ``whsec_`` signing secret) is kept, and replayed, with that secret as null: the
  fields a view names in ``response.idempotency_redact``, every field named ``secret`` or
  ``previous_secret``, and any string that starts with ``whsec_``. A replay still creates
  nothing: the caller who lost the answer rotates the secret (or makes a new key) to see one.

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
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings

from livecommerce.errors import error_response
from livecommerce.models import IdempotencyRecord
from livecommerce.rows import insert_fields, prepared_statements

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
NOT_KEPT_STATUSES = {401, 403, 429}
REPLAYED_RESPONSE_HEADERS = ("Location", "Retry-After")
# Never kept in a stored answer, wherever they appear in its JSON (kept and replayed as null).
SECRET_FIELDS = frozenset({"secret", "previous_secret"})
SECRET_PREFIXES = ("whsec_",)


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


def _hold_and_claim(*, credential: str, key: str, request_hash: str, request) -> tuple:
    """``_hold_key`` then ``_claim``: (held, record, created). On PostgreSQL the advisory lock
    and the in-progress record's insert are ONE statement (the insert runs only if the lock was
    taken, ``ON CONFLICT DO NOTHING`` instead of a savepoint); a key already recorded goes on
    to ``_claim``, which answers from it or replaces an expired or abandoned record."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        if not _hold_key(credential, key):
            return False, None, False
        return (
            True,
            *_claim(credential=credential, key=key, request_hash=request_hash, request=request),
        )
    record = IdempotencyRecord(
        credential=credential,
        key=key,
        request_hash=request_hash,
        method=request.method,
        path=request.get_full_path()[:2048],
        locked_at=timezone.now(),
    )
    fields = insert_fields(IdempotencyRecord)
    values = [f.get_db_prep_save(f.pre_save(record, True), connection) for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Only the model's own column names and placeholders enter the text; values are parameters.
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH lock AS"  # noqa: S608
            " (SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0)) AS held),"
            f" claim AS (INSERT INTO livecommerce_idempotencyrecord ({columns})"
            f" SELECT {placeholders} FROM lock WHERE lock.held"
            " ON CONFLICT DO NOTHING RETURNING id)"
            " SELECT lock.held, (SELECT id FROM claim) FROM lock",
            [f"idempotency:{credential}:{key}", *values],
        )
        held, record_id = cursor.fetchone()
    if not held:
        return False, None, False
    if record_id is not None:
        record.pk = record_id
        record._state.adding = False
        record._state.db = connection.alias
        return True, record, True
    return (
        True,
        *_claim(credential=credential, key=key, request_hash=request_hash, request=request),
    )


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


def _finish(record: IdempotencyRecord, **values) -> None:
    """``record.save(update_fields=...)`` of the answer, as one UPDATE whose text is built from
    the model's columns (the ORM's save cost several times the statement's own time, on every
    kept POST); values go through each field's ``get_db_prep_save`` as the ORM's would."""
    connection = transaction.get_connection()
    meta = IdempotencyRecord._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in values]
    params = []
    for field, value in zip(fields, values.values(), strict=True):
        setattr(record, field.attname, value)
        params.append(field.get_db_prep_save(value, connection))
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {assignments}"  # noqa: S608 (columns only)
            f" WHERE {quote(meta.pk.column)} = %s",
            [*params, record.pk],
        )


def _caller_scope(request) -> str | None:
    """Whose key space the request's ``Idempotency-Key`` lives in, or None if it does not
    authenticate: ``partner:<id>`` for any of a partner's keys, ``key:<id>`` for a staff key.

    Authenticates with the API's own classes, so a revoked key or a suspended partner is
    refused here exactly as the view would refuse it (and the view then answers it).
    """
    drf_request = Request(
        request, authenticators=[cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
    )
    try:
        user = drf_request.user
    except exceptions.APIException:
        return None
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    partner_id = getattr(user, "partner_id", None)
    if partner_id:
        return f"partner:{partner_id}"
    key_id = getattr(user, "api_key_id", None) or getattr(drf_request.auth, "pk", None)
    if key_id:
        return f"key:{key_id}"
    return None


def _redacted(value: Any, fields: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {
            name: None if name in fields and item is not None else _redacted(item, fields)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item, fields) for item in value]
    if isinstance(value, str) and value.startswith(SECRET_PREFIXES):
        return None
    return value


def _kept_body(response) -> bytes:
    """The answer to keep for replays, with no secret in it.

    The fields a view names in ``response.idempotency_redact`` (a new API key, shown once),
    every ``secret``/``previous_secret`` field and every ``whsec_`` string, at any depth, are
    kept (and replayed) as null. A body that is not JSON is kept as it is.
    """
    fields = SECRET_FIELDS | frozenset(getattr(response, "idempotency_redact", ()))
    content = response.content
    if not content or "json" not in response.get("Content-Type", ""):
        return content
    try:
        data = json.loads(content)
    except ValueError:
        return content
    redacted = _redacted(data, fields)
    if redacted == data:
        return content
    return json.dumps(redacted, separators=(",", ":"), ensure_ascii=False).encode()


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

        # The busiest calls are keyed POSTs: their few statement texts, prepared (see rows).
        with prepared_statements():
            return self._keyed(request, key)

    def _keyed(self, request, key: str):
        scope = _caller_scope(request)
        if scope is None:
            # Not authenticated (401) or refused (403): never a replay, nothing kept.
            return self.get_response(request)
        credential = _sha256(scope.encode())
        request_hash = _sha256(
            request.method.encode(), request.get_full_path().encode(), request.body
        )
        # One transaction for the record, the request's writes and the answer (see above).
        with transaction.atomic():
            held, record, created = _hold_and_claim(
                credential=credential, key=key, request_hash=request_hash, request=request
            )
            if not held:
                return _in_use_response()
            if not created:
                return self._answer_existing(record, request_hash)

            response = self.get_response(request)  # an exception rolls everything back
            if response.status_code >= 500:
                transaction.set_rollback(True)  # nothing half-done for the retry to find
                return response
            if response.status_code in NOT_KEPT_STATUSES or getattr(response, "streaming", False):
                record.delete()
                return response
            _finish(
                record,
                in_progress=False,
                status_code=response.status_code,
                content_type=response.get("Content-Type", ""),
                body=_kept_body(response),
                headers={h: response[h] for h in REPLAYED_RESPONSE_HEADERS if h in response},
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
