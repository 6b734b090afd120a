"""Sending a request to a school's endpoint safely, and reading its answer.

The SSRF guard refuses URLs that resolve to private, loopback or reserved addresses (unless the
host is allow-listed) and the connection goes to the exact address it vetted, so DNS rebinding
cannot steer a POST inside. The answer is classified: 2xx delivered; 408, 429, 5xx, timeouts and
connection errors retried; any other answer rejected.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

MAX_REASON_CHARS = 500
USER_AGENT = "adserver-lead-delivery/1"


class RefusedUrl(Exception):
    """The delivery URL points at a private, loopback or reserved address and is not allow-listed."""


def check_delivery_url(url: str, allowlist: frozenset[str]) -> list[str] | None:
    """Refuse URLs whose host resolves to a non-public address, unless the host is allow-listed.

    Checked at send time, so a name that later resolves to an internal address is caught. Returns the
    addresses to connect to (every answer, checked, in the resolver's order, without repeats), or None
    for an allow-listed host, which is connected to by name.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise RefusedUrl("not an http(s) URL")
    if host in allowlist:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise RefusedUrl(f"host does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise RefusedUrl("host does not resolve")
    if not all(address.is_global for address in addresses):
        raise RefusedUrl("host resolves to a private, loopback or reserved address")
    return list(dict.fromkeys(str(address) for address in addresses))


class _VettedAddressAdapter(HTTPAdapter):
    """Connects to the address ``check_delivery_url`` vetted instead of resolving the host name again,
    so a name that answers a public address to the check and a private one to the connection (DNS
    rebinding) cannot steer the POST inside. The Host header, TLS SNI and the certificate check keep
    the host name."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: str | tuple[str, str] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        # The name for SNI and the certificate (urllib3 drops it for plain http).
        pool_kwargs["server_hostname"] = host_params["host"]
        host_params["host"] = self.address
        return host_params, pool_kwargs

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        request.headers["Host"] = _host_header(request.url or "")


def _host_header(url: str) -> str:
    """The Host header that connecting by name would send: no trailing dot, the port unless default."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    return host if parts.port in (None, default_port) else f"{host}:{parts.port}"


def _new_session(address: str | None = None) -> requests.Session:
    """A session that takes nothing from the environment and, given a vetted address, connects only to it."""
    http = requests.Session()
    http.trust_env = False  # no proxies or .netrc from the environment
    http.headers["User-Agent"] = USER_AGENT
    if address is not None:
        adapter = _VettedAddressAdapter(address)
        http.mount("http://", adapter)
        http.mount("https://", adapter)
    return http


# Allow-listed hosts (tests, benchmarks) are connected to by name, on one shared session.
_http = _new_session()


@dataclass(frozen=True, slots=True)
class Answer:
    outcome: str  # delivered | rejected | retry
    http_status: int | None
    error: str | None
    retry_after_s: float | None = None
    # The connection was refused or the address unreachable, at once: nothing reached the school.
    refused: bool = False


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def classify(status: int, reason: str, retry_after: str | None) -> Answer:
    """2xx delivered; 408, 429 and 5xx retried; any other answer (4xx, a redirect) rejected."""
    if 200 <= status < 300:
        return Answer("delivered", status, None)
    if status in (408, 429) or status >= 500:
        return Answer("retry", status, f"HTTP {status}: {reason}".strip(), _retry_after(retry_after))
    return Answer("rejected", status, f"HTTP {status}: {reason}".strip())


def send_to_school(
    url: str, body: str, headers: dict[str, str], timeout_s: float, allowlist: frozenset[str]
) -> tuple[Answer, int]:
    """POST to the school through the SSRF guard; its answer and the time taken, in milliseconds. A URL
    the guard refuses is a final rejection: retrying cannot make a private address public, the operator
    must change the URL."""
    tick = time.perf_counter()
    try:
        addresses = check_delivery_url(url, allowlist)
    except RefusedUrl as exc:
        answer = Answer("rejected", None, f"delivery URL refused: {exc}")
    else:
        answer = post_to_school(url, body, headers, timeout_s, addresses)
    return answer, int((time.perf_counter() - tick) * 1000)


def post_to_school(
    url: str, body: str, headers: dict[str, str], timeout_s: float, addresses: list[str] | None
) -> Answer:
    """POST the lead to the school: to the addresses ``check_delivery_url`` vetted, the next one only when
    the last refused the connection (nothing reached the school, and no time went by: a connect that
    times out is not followed by another, so an attempt stays within its claim), or by name when
    ``addresses`` is None (an allow-listed host)."""
    if addresses is None:
        return _post(_http, url, body, headers, timeout_s)
    for address in addresses:
        with _new_session(address) as http:
            answer = _post(http, url, body, headers, timeout_s)
        if not answer.refused:
            break
    return answer


def _post(http: requests.Session, url: str, body: str, headers: dict[str, str], timeout_s: float) -> Answer:
    try:
        response = http.post(
            url, data=body.encode(), headers=headers, timeout=timeout_s, allow_redirects=False, stream=True
        )
    except requests.Timeout:
        return Answer("retry", None, "timeout")
    except requests.RequestException as exc:
        return Answer("retry", None, f"connection error: {type(exc).__name__}", refused=_refused(exc))
    try:
        snippet = response.raw.read(4 * MAX_REASON_CHARS, decode_content=True)
    except Exception:
        snippet = b""
    finally:
        response.close()
    reason = snippet.decode("utf-8", "replace")[:MAX_REASON_CHARS] or response.reason or ""
    return classify(response.status_code, reason, response.headers.get("Retry-After"))


def _refused(exc: requests.RequestException) -> bool:
    """Whether no connection could be made: refused or unreachable (urllib3's NewConnectionError)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)
