"""The SSRF guard of lead delivery: a school host that resolves inside is refused, and the POST goes to
the address that was checked, even when the name answers differently the second time (DNS rebinding).

The OS resolver is stood in for by a function on ``socket.getaddrinfo``; everything else is real: the
delivery job, requests and urllib3, and a local HTTP(S) server playing the school.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.leads.conftest import SchoolServer, deliver_until_settled, submit

REAL_GETADDRINFO = socket.getaddrinfo
# Public addresses as the test's network routes them (see Resolver): two to the local school server,
# one to 127.0.0.2, where nothing listens.
PUBLIC = "93.184.216.34"
PUBLIC_TOO = "93.184.216.35"
DOWN = "93.184.216.36"


class Resolver:
    """``socket.getaddrinfo`` with a few names of the test's own: each name gives its lists of answers
    one lookup after another (the last list from then on); PUBLIC and PUBLIC_TOO lead to 127.0.0.1,
    where the school server listens, DOWN to 127.0.0.2; anything else goes to the OS resolver."""

    def __init__(self, names: dict[str, list[list[str]]]) -> None:
        self.names = names
        self.lookups: dict[str, int] = dict.fromkeys(names, 0)

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in self.names:
            self.lookups[host] += 1
            answers = self.names[host][min(self.lookups[host], len(self.names[host])) - 1]
            return [info for address in answers for info in REAL_GETADDRINFO(address, port, *args, **kwargs)]
        host = {PUBLIC: "127.0.0.1", PUBLIC_TOO: "127.0.0.1", DOWN: "127.0.0.2"}.get(host, host)
        return REAL_GETADDRINFO(host, port, *args, **kwargs)


def test_a_host_name_resolving_to_loopback_is_refused_and_never_contacted(app, client, admin, make_world,
                                                                          school_server, monkeypatch):  # fmt: skip
    world = make_world({"method": "http_post", "url": f"http://localhost:{school_server.port}/leads"})
    lead_id = submit(client, world)
    monkeypatch.setitem(app.config, "DELIVERY_URL_ALLOWLIST", frozenset())

    lead = deliver_until_settled(app, client, admin, lead_id)

    assert lead["status"] == "rejected"
    assert lead["rejection_reason"].startswith("delivery URL refused: host resolves to a private")
    assert [(a["http_status"], a["outcome"]) for a in lead["attempts"]] == [(None, "rejected")]
    assert school_server.received == []


@pytest.mark.parametrize("answers", [["10.20.30.40"], ["169.254.169.254"], [PUBLIC, "192.168.1.10"]])
def test_a_host_name_with_any_private_answer_is_refused(monkeypatch, answers):
    from adserver.services.leads.school_endpoint import RefusedUrl, check_delivery_url

    monkeypatch.setattr(socket, "getaddrinfo", Resolver({"crm.school.test": [answers]}))
    with pytest.raises(RefusedUrl, match="private, loopback or reserved"):
        check_delivery_url("https://crm.school.test/leads", frozenset({"127.0.0.1", "localhost"}))


def test_a_name_that_rebinds_after_the_check_is_still_posted_to_the_checked_address(
    app, client, admin, make_world, school_server, monkeypatch
):
    # Nothing listens on 127.0.0.2: a POST that followed the second answer would fail to connect.
    resolver = Resolver({"crm.rebinding.test": [[PUBLIC], ["127.0.0.2"]]})
    world = make_world({"method": "http_post", "url": f"http://crm.rebinding.test:{school_server.port}/leads"})
    lead_id = submit(client, world)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)

    lead = deliver_until_settled(app, client, admin, lead_id)

    assert lead["status"] == "delivered", lead["attempts"]
    assert resolver.lookups["crm.rebinding.test"] == 1  # the check's lookup, and no second one
    (received,) = school_server.received
    assert received.headers["host"] == f"crm.rebinding.test:{school_server.port}"
    assert received.headers["user-agent"] == "adserver-lead-delivery/1"
    assert received.headers["webhook-id"] == lead_id


def test_when_a_vetted_address_refuses_the_connection_the_next_one_gets_the_lead(
    app, client, admin, make_world, school_server, monkeypatch
):
    world = make_world({"method": "http_post", "url": f"http://crm.two.test:{school_server.port}/leads"})
    lead_id = submit(client, world)
    monkeypatch.setattr(socket, "getaddrinfo", Resolver({"crm.two.test": [[DOWN, PUBLIC]]}))

    lead = deliver_until_settled(app, client, admin, lead_id)

    assert lead["status"] == "delivered", lead["attempts"]
    assert [(a["number"], a["outcome"]) for a in lead["attempts"]] == [(1, "delivered")]
    assert len(school_server.received) == 1


def test_a_send_that_times_out_after_connecting_is_not_repeated_to_the_next_address(
    app, client, admin, make_world, school_server, monkeypatch
):
    from tests.leads.conftest import Scripted

    school_server.answer(Scripted(200, delay_s=3))  # the school may have the lead: no second copy now
    world = make_world({"method": "http_post", "url": f"http://crm.slow.test:{school_server.port}/leads",
                        "timeout_s": 1})  # fmt: skip
    lead_id = submit(client, world)
    monkeypatch.setattr(socket, "getaddrinfo", Resolver({"crm.slow.test": [[PUBLIC, PUBLIC_TOO]]}))

    with app.app_context():
        from adserver.services.leads.delivery import deliver_job

        assert deliver_job(lead_id) == "retry"
    assert len(school_server.received) == 1
    assert client.get(f"/v1/leads/{lead_id}", headers=admin).get_json()["attempts"][0]["error"] == "timeout"


def test_an_allow_listed_host_is_connected_to_by_name(app, client, admin, http_world, school_server):
    from adserver.services.leads.school_endpoint import check_delivery_url

    assert check_delivery_url(school_server.url, app.config["DELIVERY_URL_ALLOWLIST"]) is None
    lead = deliver_until_settled(app, client, admin, submit(client, http_world))
    assert lead["status"] == "delivered"
    assert school_server.received[0].headers["host"] == f"127.0.0.1:{school_server.port}"


# ---- TLS to a vetted address -------------------------------------------------


def _issue(tmp_path: Path, host_name: str) -> tuple[Path, Path, Path]:
    """A certificate authority and a server certificate it signs for ``host_name``: (ca, cert, key) files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def build(subject: str, key: Any, issuer: str, issuer_key: Any, is_ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False)
        )  # fmt: skip
        if is_ca:
            usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
            builder = builder.add_extension(usage, critical=True)
        else:
            usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
            builder = builder.add_extension(usage, critical=True)
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name)]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("Test schools CA", ca_key, "Test schools CA", ca_key, is_ca=True)
    server = build(host_name, server_key, "Test schools CA", ca_key, is_ca=False)
    paths = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))  # fmt: skip
    return paths


@dataclass
class TlsSchool:
    """An HTTPS school server on 127.0.0.1 and the SNI names its TLS handshakes carried."""

    server: SchoolServer
    server_names: list[str | None]

    @property
    def hosts(self) -> list[str]:
        return [received.headers["host"] for received in self.server.received]


@pytest.fixture
def tls_school(tmp_path: Path) -> Iterator[tuple[TlsSchool, Path]]:
    ca, cert, key = _issue(tmp_path, "crm.school.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server_names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)  # type: ignore[assignment]
    server = SchoolServer(tls=context)
    yield TlsSchool(server, server_names), ca
    server.stop()


def test_tls_to_a_vetted_address_names_the_school_host_and_checks_its_certificate(tls_school):
    from adserver.services.leads.school_endpoint import _new_session

    school, ca = tls_school
    # crm.school.test resolves nowhere: the connection can only go to the address given.
    with _new_session("127.0.0.1") as http:
        response = http.post(
            f"https://crm.school.test:{school.server.port}/leads", data=b"{}", verify=str(ca), timeout=5
        )
    assert response.status_code == 200
    assert school.server_names == ["crm.school.test"]
    assert school.hosts == [f"crm.school.test:{school.server.port}"]


def test_tls_to_a_vetted_address_refuses_a_certificate_for_another_name(tls_school):
    from adserver.services.leads.school_endpoint import _new_session

    school, ca = tls_school
    with _new_session("127.0.0.1") as http, pytest.raises(requests.exceptions.SSLError):
        http.post(f"https://crm.other-school.test:{school.server.port}/leads", data=b"{}", verify=str(ca), timeout=5)
    assert school.hosts == []
