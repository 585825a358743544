"""Log filters.

``RedactSecrets`` sits on the log handlers (settings.LOGGING) and replaces webhook signing
secrets (``whsec_…``) wherever a record carries one: its message, its arguments, and the
``sql``/``params`` that Django's database logger attaches (a secret is stored readable, because
every delivery is signed with it, so the INSERT that stores it would otherwise print it when SQL
is logged at DEBUG). API keys need no filter: only their hash ever reaches the database.
"""

import logging
import re

_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")
REDACTED = "whsec_[redacted]"


def redact(value):
    if isinstance(value, str):
        return _SECRET.sub(REDACTED, value)
    if isinstance(value, tuple | list):
        return type(value)(redact(item) for item in value)
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    return value


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg)
        if record.args:
            record.args = redact(record.args)
        for name in ("sql", "params"):
            if hasattr(record, name):
                setattr(record, name, redact(getattr(record, name)))
        return True
