"""Opaque, time-ordered identifiers such as ``sch_01JD...``."""

from __future__ import annotations

import base64
import os
import time

# RFC 4648 base32 re-spelt in Crockford's lower-case alphabet, which keeps the ASCII order.
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789abcdefghjkmnpqrstvwxyz")


def new_id(prefix: str) -> str:
    """A prefixed id: 48 bits of milliseconds then 80 random bits, so ids sort by creation time."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)
    return f"{prefix}_{base64.b32encode(raw)[:26].translate(_CROCKFORD).decode()}"
