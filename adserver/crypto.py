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


@lru_cache(maxsize=4)
def _hash_key(key: str) -> bytes:
    return hashlib.sha256(b"adserver:keyed-hash:" + key.encode()).digest()


def _key() -> str:
    return str(current_app.config["ENCRYPTION_KEY"])


def encrypt(value: str) -> str:
    return _fernet(_key()).encrypt(value.encode()).decode()


def encrypt_all(*values: str) -> list[str]:
    """``encrypt`` for several values, looking the key up once."""
    fernet = _fernet(_key())
    return [fernet.encrypt(value.encode()).decode() for value in values]


def decrypt(token: str) -> str:
    return _fernet(_key()).decrypt(token.encode()).decode()


def keyed_hash(value: str) -> str:
    """HMAC-SHA256 of an already-normalised value, keyed from ENCRYPTION_KEY (never a bare hash of PII)."""
    return hmac.new(_hash_key(_key()), value.encode(), hashlib.sha256).hexdigest()
