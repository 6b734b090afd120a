"""Encryption of personal data at rest and keyed hashes for duplicate checks.

Values are sealed with AES-256-GCM under a key derived (HKDF) from ENCRYPTION_KEY, as
``v1.`` + URL-safe base64 of the 12-byte random nonce and the ciphertext with its tag.
Values written before that format (Fernet tokens under ENCRYPTION_KEY itself) still decrypt.

While ``ENCRYPTION_KEY`` is being rotated, values sealed under the keys it replaces
(``ENCRYPTION_KEYS_OLD``) still decrypt; new values are sealed under the current key only, and the
``rotate-encryption-key`` command seals the old ones again (``services.keys.encryption``).
Keyed hashes are keyed from ``HASH_KEY`` (by default ``ENCRYPTION_KEY``), which a rotation keeps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

_PREFIX = "v1."
_NONCE_BYTES = 12


@lru_cache(maxsize=4)
def _aead(key: str) -> AESGCM:
    derive = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"adserver:personal-data:aes-gcm")
    return AESGCM(derive.derive(base64.urlsafe_b64decode(key)))


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


@lru_cache(maxsize=4)
def _hash_key(key: str) -> bytes:
    return hashlib.sha256(b"adserver:keyed-hash:" + key.encode()).digest()


def _key() -> str:
    return str(current_app.config["ENCRYPTION_KEY"])


def _old_keys() -> tuple[str, ...]:
    return tuple(current_app.config["ENCRYPTION_KEYS_OLD"])


def _seal(aead: AESGCM, value: str, nonce: bytes) -> str:
    return _PREFIX + base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, value.encode(), None)).decode()


def encrypt(value: str) -> str:
    return encrypt_all(value)[0]


def encrypt_all(*values: str) -> list[str]:
    """``encrypt`` for several values, looking the key up and drawing their random nonces once."""
    aead = _aead(_key())
    nonces = os.urandom(_NONCE_BYTES * len(values))
    return [_seal(aead, value, nonces[i * _NONCE_BYTES : (i + 1) * _NONCE_BYTES]) for i, value in enumerate(values)]


def _open(token: str, key: str) -> str:
    if not token.startswith(_PREFIX):
        return _fernet(key).decrypt(token.encode()).decode()
    sealed = base64.urlsafe_b64decode(token[len(_PREFIX) :])
    return _aead(key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], None).decode()


def decrypt(token: str) -> str:
    """The value sealed in ``token``, under the current key or, during a rotation, an old one."""
    try:
        return _open(token, _key())
    except (InvalidTag, InvalidToken):
        for key in _old_keys():
            try:
                return _open(token, key)
            except (InvalidTag, InvalidToken):
                continue
        raise


def under_current_key(token: str) -> bool:
    """Whether ``token`` was sealed under the current key, in the current format."""
    if not token.startswith(_PREFIX):
        return False
    try:
        _open(token, _key())
    except InvalidTag:
        return False
    return True


def keyed_hash(value: str | bytes) -> str:
    """HMAC-SHA256 of an already-normalised value, keyed from HASH_KEY (never a bare hash of PII)."""
    data = value.encode() if isinstance(value, str) else value
    return hmac.new(_hash_key(str(current_app.config["HASH_KEY"])), data, hashlib.sha256).hexdigest()
