"""Settings, read only from the environment.

Two modes:

* **embedded** (``DATABASE_URL`` and ``REDIS_URL`` both unset): a SQLite file
  and an embedded Redis server under ``INSTANCE_DIR``. Missing secrets are
  generated once and kept in ``INSTANCE_DIR/dev-secrets.json`` so that every
  process (web, worker, beat, CLI) shares them.
* **production** (either URL set): every secret must be set and well formed,
  or the process refuses to start with a message naming the setting.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from cryptography.fernet import Fernet
from limits import RateLimitItem, parse_many

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class RateLimits:
    """The abuse limits (``None``: no limit). Browser traffic (a publishable key, or a click) counts per
    client IP; secret keys count per key; failed authentications count per client IP."""

    ads_per_ip: RateLimitItem | None
    clicks_per_ip: RateLimitItem | None
    leads_per_ip: RateLimitItem | None
    ads_per_key: RateLimitItem | None
    leads_per_key: RateLimitItem | None
    failed_auth_per_ip: RateLimitItem | None


# Each limit's environment variable and default (the contract's Limits section).
RATE_LIMIT_DEFAULTS = {
    "ads_per_ip": ("RATE_LIMIT_ADS_PER_IP", "300/minute"),
    "clicks_per_ip": ("RATE_LIMIT_CLICKS_PER_IP", "60/minute"),
    "leads_per_ip": ("RATE_LIMIT_LEADS_PER_IP", "20/minute"),
    "ads_per_key": ("RATE_LIMIT_ADS_PER_KEY", "none"),
    "leads_per_key": ("RATE_LIMIT_LEADS_PER_KEY", "300/minute"),
    "failed_auth_per_ip": ("RATE_LIMIT_FAILED_AUTH_PER_IP", "20/minute"),
}


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    secret_key: str
    encryption_key: str
    # Keys ENCRYPTION_KEY replaced, whose values still decrypt until rotate-encryption-key has sealed them again.
    encryption_keys_old: tuple[str, ...]
    # The key of the keyed hashes (duplicate checks, the opt-out list): ENCRYPTION_KEY unless set.
    hash_key: str
    admin_api_key: str | None
    # The bearer token GET /metrics requires (None: metrics only on the embedded defaults).
    metrics_token: str | None
    public_base_url: str
    delivery_url_allowlist: frozenset[str]
    delivery_retry_base_s: float
    event_retention_days: int
    event_reclaim_idle_s: float
    instance_dir: Path
    embedded_redis: bool
    embedded: bool
    log_level: str
    rate_limits: RateLimits
    # Proxies in front of the app whose X-Forwarded-For is trusted for the client IP (0: none).
    trusted_proxies: int

    @property
    def embedded_redis_socket(self) -> Path:
        return self.instance_dir / "redis.sock"


def _dev_secrets(instance_dir: Path) -> dict[str, str]:
    """Development secrets, generated on first use and shared by every process."""
    path = instance_dir / "dev-secrets.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    values = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    instance_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(values))
    try:
        # First writer wins, so concurrent first starts agree on one set.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return dict(json.loads(path.read_text()))


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parsed = urlparse(value)
    if parsed.scheme.split("+")[0] not in schemes:
        raise ConfigError(f"{name} must be a URL with scheme {' or '.join(schemes)}, got {value!r}")
    return value


def _check_fernet_key(value: str, name: str = "ENCRYPTION_KEY") -> str:
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{name} must be 32 bytes in URL-safe base64 (Fernet.generate_key())") from exc
    if len(raw) != 32:
        raise ConfigError(f"{name} must be 32 bytes in URL-safe base64 (Fernet.generate_key())")
    return value


def _encryption_keys_old(env: Mapping[str, str], current: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in env.get("ENCRYPTION_KEYS_OLD", "").split(",") if key.strip())
    for key in keys:
        _check_fernet_key(key, "each key of ENCRYPTION_KEYS_OLD")
    return tuple(key for key in keys if key != current)


def _hash_key(env: Mapping[str, str], encryption_key: str, old_keys: tuple[str, ...]) -> str:
    """HASH_KEY, or ENCRYPTION_KEY when it is not set. During a rotation it must be set: the hashes
    stored so far (the opt-out list keeps nothing else) were keyed from a key that is now old."""
    value = env.get("HASH_KEY", "").strip()
    if value:
        return _check_fernet_key(value, "HASH_KEY")
    if old_keys:
        raise ConfigError(
            "ENCRYPTION_KEYS_OLD is set but HASH_KEY is not: set HASH_KEY to the ENCRYPTION_KEY the keyed hashes "
            "were made with (the one in force before the first rotation), so duplicate checks and opt-outs still match"
        )
    return encryption_key


def _rate_limit(name: str, value: str) -> RateLimitItem | None:
    if value.lower() == "none":
        return None
    try:
        (rate,) = parse_many(value)
    except ValueError:  # not a rate, or several
        raise ConfigError(
            f"{name} must be one rate such as 300/minute or 5 per 10 seconds, or none; got {value!r}"
        ) from None
    return rate


def _rate_limits(env: Mapping[str, str]) -> RateLimits:
    return RateLimits(
        **{
            field: _rate_limit(name, env.get(name, "").strip() or default)
            for field, (name, default) in RATE_LIMIT_DEFAULTS.items()
        }
    )


def _trusted_proxies(value: str) -> int:
    if not value.isdigit():
        raise ConfigError(f"TRUSTED_PROXIES must be a number of proxy hops (0 for none), got {value!r}")
    return int(value)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; raise ConfigError with a clear message."""
    env = os.environ if env is None else env
    instance_dir = Path(env.get("INSTANCE_DIR") or ROOT / "instance").resolve()
    database_url = env.get("DATABASE_URL", "").strip()
    redis_url = env.get("REDIS_URL", "").strip()
    embedded = not database_url and not redis_url

    if database_url:
        database_url = _check_url("DATABASE_URL", database_url, ("postgresql", "postgres", "sqlite"))
        if database_url.startswith("postgres://"):
            database_url = "postgresql://" + database_url.removeprefix("postgres://")
        if database_url.startswith("postgresql://"):
            database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    else:
        database_url = f"sqlite:///{instance_dir / 'adserver.db'}"

    embedded_redis = not redis_url
    if redis_url:
        redis_url = _check_url("REDIS_URL", redis_url, ("redis", "rediss", "unix"))
    else:
        redis_url = f"unix://{instance_dir / 'redis.sock'}"

    generated = _dev_secrets(instance_dir) if embedded else {}
    values = {}
    for name in ("SECRET_KEY", "ENCRYPTION_KEY"):
        value = env.get(name, "").strip() or generated.get(name, "")
        if not value:
            raise ConfigError(
                f"{name} is not set. It is required whenever DATABASE_URL or REDIS_URL is set; "
                "development values are generated only on the embedded defaults."
            )
        values[name] = value
    if len(values["SECRET_KEY"]) < 16:
        raise ConfigError("SECRET_KEY must be at least 16 characters")
    _check_fernet_key(values["ENCRYPTION_KEY"])
    encryption_keys_old = _encryption_keys_old(env, values["ENCRYPTION_KEY"])

    port = env.get("PORT", "8000")
    public_base_url = env.get("PUBLIC_BASE_URL", "").strip() or f"http://localhost:{port}"
    _check_url("PUBLIC_BASE_URL", public_base_url, ("http", "https"))

    try:
        retry_base = float(env.get("DELIVERY_RETRY_BASE_S", "30"))
    except ValueError as exc:
        raise ConfigError("DELIVERY_RETRY_BASE_S must be a number of seconds") from exc
    if retry_base < 0:
        raise ConfigError("DELIVERY_RETRY_BASE_S must not be negative")

    try:
        retention_days = int(env.get("EVENT_RETENTION_DAYS", "90"))
    except ValueError as exc:
        raise ConfigError("EVENT_RETENTION_DAYS must be a whole number of days") from exc
    if retention_days < 1:
        raise ConfigError("EVENT_RETENTION_DAYS must be at least 1")

    try:
        reclaim_idle_s = float(env.get("EVENT_RECLAIM_IDLE_S", "60"))
    except ValueError as exc:
        raise ConfigError("EVENT_RECLAIM_IDLE_S must be a number of seconds") from exc
    if reclaim_idle_s <= 0:
        raise ConfigError("EVENT_RECLAIM_IDLE_S must be more than 0")

    allowlist = frozenset(
        host.strip().lower() for host in env.get("DELIVERY_URL_ALLOWLIST", "").split(",") if host.strip()
    )
    admin_key = env.get("ADMIN_API_KEY", "").strip() or None
    if admin_key is not None and len(admin_key) < 16:
        raise ConfigError("ADMIN_API_KEY must be at least 16 characters")
    metrics_token = env.get("METRICS_TOKEN", "").strip() or None
    if metrics_token is not None and len(metrics_token) < 16:
        raise ConfigError("METRICS_TOKEN must be at least 16 characters")

    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        secret_key=values["SECRET_KEY"],
        encryption_key=values["ENCRYPTION_KEY"],
        encryption_keys_old=encryption_keys_old,
        hash_key=_hash_key(env, values["ENCRYPTION_KEY"], encryption_keys_old),
        admin_api_key=admin_key,
        metrics_token=metrics_token,
        public_base_url=public_base_url.rstrip("/"),
        delivery_url_allowlist=allowlist,
        delivery_retry_base_s=retry_base,
        event_retention_days=retention_days,
        event_reclaim_idle_s=reclaim_idle_s,
        instance_dir=instance_dir,
        embedded_redis=embedded_redis,
        embedded=embedded,
        log_level=env.get("LOG_LEVEL", "INFO").upper(),
        rate_limits=_rate_limits(env),
        trusted_proxies=_trusted_proxies(env.get("TRUSTED_PROXIES", "").strip() or "0"),
    )
