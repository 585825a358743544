"""Signing secrets and Standard Webhooks signatures.

A secret is ``whsec_`` + base64 of 32 random bytes, the form the ``standardwebhooks`` libraries
take. The signature is ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``; during a rotation
each live secret signs, and the signatures are joined by spaces, so a receiver holding either
secret verifies the delivery.
"""

import base64
import secrets
from collections.abc import Iterable
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_header(*, secrets: Iterable[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """The ``webhook-signature`` value: one ``v1,...`` per secret, space-separated."""
    return " ".join(
        Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body) for secret in secrets
    )
