"""Writing the audit trail."""

from collections.abc import Iterable
from typing import Any

from django.db import models

from audit.models import AuditEntry

SYSTEM = "system"


def _json(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return str(value)  # datetimes, decimals: as text


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model,
    changes: dict[str, tuple[Any, Any]] | None = None,
) -> AuditEntry:
    """Record that ``actor`` did ``action`` to ``target``; call it inside the change's
    transaction, so the entry exists if and only if the change does.

    ``actor`` is the API caller (anything with ``api_key_id`` and a ``str()`` such as
    ``staff:ops``), or None for the service itself (a management command). ``changes`` maps a
    field to ``(old, new)``; the caller leaves secrets out.
    """
    return AuditEntry.objects.create(
        api_key=getattr(actor, "api_key_id", "") or "",
        actor=str(actor) if actor is not None else SYSTEM,
        action=action,
        object_type=target._meta.model_name,
        object_id=str(target.pk),
        changes={field: [_json(old), _json(new)] for field, (old, new) in (changes or {}).items()},
    )


def field_values(target: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """``{field: value}`` of ``target`` before a change, for :func:`field_changes` after it."""
    return {field: getattr(target, field) for field in fields}


def created_changes(target: models.Model, fields: Iterable[str]) -> dict[str, tuple[Any, Any]]:
    """A creation as the trail records it: each of ``fields`` set from None to its value."""
    return {field: (None, getattr(target, field)) for field in fields}


def field_changes(before: dict[str, Any], after: models.Model) -> dict[str, tuple[Any, Any]]:
    """``{field: (old, new)}`` for the fields of ``before`` whose value ``after`` changed."""
    changed = {}
    for field, old in before.items():
        new = getattr(after, field)
        if _json(old) != _json(new):
            changed[field] = (old, new)
    return changed
