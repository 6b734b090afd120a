"""Encryption of personal data at rest and keyed hashes for duplicate checks."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet
from flask import current_app


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def _key() -> str:
    return str(current_app.config["ENCRYPTION_KEY"])


def encrypt(value: str) -> str:
    return _fernet(_key()).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet(_key()).decrypt(token.encode()).decode()


def keyed_hash(value: str) -> str:
    """HMAC-SHA256 of an already-normalised value, keyed from ENCRYPTION_KEY (never a bare hash of PII)."""
    key = hashlib.sha256(b"adserver:keyed-hash:" + _key().encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
