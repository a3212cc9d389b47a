"""keyplane.tls.configured_certificates: what the SSL certificates API lists for the settings given."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keyplane.config import Settings
from keyplane.tls import configured_certificates, distinguished_name
from tests.certs import Authority


def test_nothing_configured_lists_nothing() -> None:
    assert configured_certificates(Settings()) == []


def test_the_listener_chain_its_authorities_and_the_upstream_ones(tmp_path: Path) -> None:
    ca = Authority("Chain CA")
    leaf = ca.issue("node")
    cert, key = leaf.write(tmp_path, "node")
    cert.write_bytes(leaf.cert_pem() + ca.pem())
    authorities = ca.write(tmp_path / "ca.crt")
    upstream = Authority("Upstream CA").write(tmp_path / "upstream.crt")
    listed = configured_certificates(
        Settings(tls_certificate=cert, tls_key=key, tls_certificate_authorities=authorities, upstream_ca_certs=upstream)
    )
    # By path, then serial number (as hexadecimal text), as Elasticsearch orders them.
    chain = sorted(
        [(leaf.certificate, "node", True), (ca.certificate, "Chain CA", False)], key=lambda c: f"{c[0].serial_number:x}"
    )
    assert [(Path(c.path).name, c.subject_dn, c.has_private_key) for c in listed] == [
        ("ca.crt", "CN=Chain CA, O=Keyplane tests", False),
        *[("node.crt", f"CN={cn}, O=Keyplane tests", with_key) for _, cn, with_key in chain],
        ("upstream.crt", "CN=Upstream CA, O=Keyplane tests", False),
    ]
    node = next(c for c in listed if c.has_private_key)
    assert node.serial_number == format(leaf.certificate.serial_number, "x") and node.alias is None
    assert node.issuer == "CN=Chain CA, O=Keyplane tests" and node.format == "PEM"
    assert node.expiry == leaf.certificate.not_valid_after_utc
    # The same file named twice is listed once.
    twice = configured_certificates(Settings(tls_certificate_authorities=authorities, upstream_ca_certs=authorities))
    assert len(twice) == 1


def test_a_file_that_cannot_be_read_is_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "empty.crt").write_text("not a certificate\n")
    with caplog.at_level(logging.WARNING, logger="keyplane.tls"):
        listed = configured_certificates(
            Settings(tls_certificate_authorities=tmp_path / "empty.crt", upstream_ca_certs=tmp_path / "gone.crt")
        )
    assert listed == []
    assert "empty.crt" in caplog.text and "gone.crt" in caplog.text


def test_distinguished_names_read_as_java_prints_them() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme, Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, "node"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.com"),
        ]
    )
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(255)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert distinguished_name(cert.subject) == 'EMAILADDRESS=ops@example.com, CN=node, O="Acme, Inc.", C=NL'


def test_multi_valued_parts_odd_values_and_unnamed_attributes() -> None:
    name = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ops"),
                    x509.NameAttribute(NameOID.COMMON_NAME, 'say "hi"'),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(x509.ObjectIdentifier("1.2.3.4"), "plain")]),
        ]
    )
    shown = distinguished_name(name)
    assert shown.startswith("OID.1.2.3.4=plain, ")
    assert set(shown.removeprefix("OID.1.2.3.4=plain, ").split(" + ")) == {"OU=ops", 'CN="say \\"hi\\""'}
