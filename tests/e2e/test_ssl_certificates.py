"""``GET /_ssl/certificates`` on a real server, with certificates made by a test CA and the official client."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from elasticsearch import AuthorizationException, Elasticsearch

from tests.certs import Authority, Issued
from tests.e2e.server import PASSWORD, Server, on_store

ADMIN = ("elastic", PASSWORD)


class Pki:
    def __init__(self, root: Path) -> None:
        self.ca = Authority("Keyplane SSL API CA")
        self.ca_path = self.ca.write(root / "ca.crt")
        self.leaf = self.ca.issue("node-ssl")
        self.cert, self.key = root / "node.crt", root / "node.key"
        self.write(self.leaf)

    def write(self, leaf: Issued) -> None:
        # The chain as certificate tools write it: the node's certificate, then its issuer.
        self.cert.write_bytes(leaf.cert_pem() + self.ca.pem())
        self.key.write_bytes(leaf.key_pem())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Server]:
    env = {
        "KEYPLANE_TLS_CERTIFICATE": str(pki.cert),
        "KEYPLANE_TLS_KEY": str(pki.key),
        "KEYPLANE_TLS_CERTIFICATE_AUTHORITIES": str(pki.ca_path),
    }
    with on_store(tmp_path_factory.mktemp("ssl"), extra_env=env) as srv:
        yield srv


def _client(srv: Server, pki: Pki, auth: tuple[str, str] = ADMIN) -> Elasticsearch:
    return Elasticsearch(srv.url, basic_auth=auth, ca_certs=str(pki.ca_path), max_retries=0, request_timeout=10)


def _expected(
    issued_subject: str, serial: int, with_key: bool, path: Path, expiry: str, issuer: str
) -> dict[str, object]:
    return {
        "path": str(path),
        "format": "PEM",
        "alias": None,
        "subject_dn": issued_subject,
        "serial_number": format(serial, "x"),
        "has_private_key": with_key,
        "expiry": expiry,
        "issuer": issuer,
    }


def _expiry(issued: Issued | Authority) -> str:
    return issued.certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_every_configured_certificate_is_listed(tls_server: Server, pki: Pki) -> None:
    with _client(tls_server, pki) as es:
        listed = es.ssl.certificates().body
    ca_dn, leaf_dn = "CN=Keyplane SSL API CA, O=Keyplane tests", "CN=node-ssl, O=Keyplane tests"
    ca_serial, leaf_serial = pki.ca.certificate.serial_number, pki.leaf.certificate.serial_number
    ca_from = _expected(ca_dn, ca_serial, False, pki.ca_path, _expiry(pki.ca), ca_dn)
    chain = [
        _expected(leaf_dn, leaf_serial, True, pki.cert, _expiry(pki.leaf), ca_dn),
        _expected(ca_dn, ca_serial, False, pki.cert, _expiry(pki.ca), ca_dn),
    ]
    # Ordered as Elasticsearch orders them: by path, then serial number.
    assert listed == [ca_from, *sorted(chain, key=lambda c: str(c["serial_number"]))]


def test_a_replaced_certificate_is_shown_at_once(tls_server: Server, pki: Pki) -> None:
    fresh = pki.ca.issue("node-ssl-2")
    pki.write(fresh)
    try:
        with _client(tls_server, pki) as es:
            listed = es.ssl.certificates().body
        with_key = [c for c in listed if c["has_private_key"]]
        assert [c["subject_dn"] for c in with_key] == ["CN=node-ssl-2, O=Keyplane tests"]
        assert with_key[0]["serial_number"] == format(fresh.certificate.serial_number, "x")
    finally:
        pki.write(pki.leaf)


def test_monitor_is_needed(tls_server: Server, pki: Pki) -> None:
    with _client(tls_server, pki) as admin:
        admin.security.put_role(name="watcher", cluster=["monitor"])
        admin.security.put_user(username="mon", password="mon-secret", roles=["watcher"])
        admin.security.put_user(username="nobody", password="nobody-secret", roles=[])
    with _client(tls_server, pki, ("mon", "mon-secret")) as es:
        assert len(es.ssl.certificates().body) == 3
    with _client(tls_server, pki, ("nobody", "nobody-secret")) as es, pytest.raises(AuthorizationException) as denied:
        es.ssl.certificates()
    assert "cluster:monitor/xpack/ssl/certificates/get" in str(denied.value.body)
    verify = ssl.create_default_context(cafile=str(pki.ca_path))
    assert httpx.get(tls_server.url + "/_ssl/certificates", verify=verify).status_code == 401


def test_without_tls_the_list_is_empty(server: Server) -> None:
    with Elasticsearch(server.url, basic_auth=ADMIN) as es:
        assert es.ssl.certificates().body == []
