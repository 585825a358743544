"""Opaque, prefixed, time-ordered identifiers (``ord_…``, ``prt_…``, ``evt_…``).

Clients never parse them. The first ten characters after the prefix encode the creation time in
milliseconds (Crockford base32), so ids sort in creation order; the rest is random.
"""

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, remainder = divmod(number, 32)
        chars.append(_ALPHABET[remainder])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new id such as ``ord_01jd3x6q2c7h9k4m8n2p5r7t9v``."""
    timestamp = _encode(time.time_ns() // 1_000_000, 10)
    randomness = _encode(secrets.randbits(80), 16)
    return f"{prefix}_{timestamp}{randomness}"


class IdFactory:
    """A picklable default for ``CharField(default=...)`` so migrations can reference it."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def deconstruct(self):
        return ("livecommerce.ids.IdFactory", (self.prefix,), {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdFactory) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)


ID_MAX_LENGTH = 32
