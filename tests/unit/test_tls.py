"""keyplane.tls: which settings turn TLS on, the messages of unusable PEM files, and reloading."""

from __future__ import annotations

import logging
import os
import ssl
import time
from pathlib import Path

import pytest

from keyplane.config import Settings
from keyplane.tls import Listener, TLSError, TLSFiles, load
from tests.certs import Authority, common_name


@pytest.fixture(scope="module")
def ca() -> Authority:
    return Authority()


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def handshake(listener: Listener, ca: Authority, client_cert: tuple[Path, Path] | None = None) -> str:
    """A whole TLS handshake in memory against the listener's context; the common name served."""
    client_context = ssl.create_default_context(cadata=ca.pem().decode())
    if client_cert is not None:
        client_context.load_cert_chain(*client_cert)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = listener.context.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side, out, peer_in in (("client", client, c_out, s_in), ("server", server, s_out, c_in)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            break
    # TLS 1.3: the server's verdict on the client's certificate reaches the client with the first read.
    client.write(b"ping")
    s_in.write(c_out.read())
    assert server.read(4) == b"ping"
    return common_name(client.getpeercert(binary_form=True))


def test_plain_http_unless_both_files_are_given(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    assert TLSFiles.from_settings(settings()) is None
    assert TLSFiles.from_settings(settings(tls_certificate=cert, tls_key=key)) == TLSFiles(cert, key)
    with pytest.raises(TLSError, match="^KEYPLANE_TLS_CERTIFICATE is set without KEYPLANE_TLS_KEY: give both"):
        TLSFiles.from_settings(settings(tls_certificate=cert))
    with pytest.raises(TLSError, match="^KEYPLANE_TLS_KEY is set without KEYPLANE_TLS_CERTIFICATE: give both"):
        TLSFiles.from_settings(settings(tls_key=key))
    with pytest.raises(TLSError, match="^KEYPLANE_TLS_CERTIFICATE_AUTHORITIES need KEYPLANE_TLS_CERTIFICATE and"):
        TLSFiles.from_settings(settings(tls_certificate_authorities=cert))
    with pytest.raises(TLSError, match="KEYPLANE_TLS_CLIENT_AUTHENTICATION=required needs KEYPLANE_TLS_CERTIFICATE_"):
        TLSFiles.from_settings(settings(tls_certificate=cert, tls_key=key, tls_client_authentication="required"))


def test_client_authentication_applies_with_authorities_only(tmp_path: Path) -> None:
    cert, key, cas = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    assert TLSFiles(cert, key).verify_mode == ssl.CERT_NONE
    assert TLSFiles(cert, key, authorities=cas).verify_mode == ssl.CERT_OPTIONAL
    assert TLSFiles(cert, key, authorities=cas, client_authentication="required").verify_mode == ssl.CERT_REQUIRED
    assert TLSFiles(cert, key, authorities=cas, client_authentication="none").verify_mode == ssl.CERT_NONE
    assert TLSFiles(cert, key, authorities=cas).paths == (cert, key, cas)


def test_load_serves_the_leaf_with_a_tls_1_2_floor(tmp_path: Path, ca: Authority) -> None:
    issued = ca.issue("node-one")
    cert, key = issued.write(tmp_path, "node")
    # A chain file: the leaf, then its authority.
    cert.write_bytes(issued.cert_pem() + ca.pem())
    context, served = load(TLSFiles(cert, key))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert served.subject == "CN=node-one,O=Keyplane tests"
    assert served.serial == issued.certificate.serial_number
    assert served.not_after == issued.certificate.not_valid_after_utc
    assert not served.expired
    assert served.describe().startswith(f"[CN=node-one,O=Keyplane tests] (serial {served.serial:x}, expires 20")


def test_unusable_files_are_named_in_the_message(tmp_path: Path, ca: Authority) -> None:
    cert, key = ca.issue("node-one").write(tmp_path, "one")
    _, other_key = ca.issue("node-two").write(tmp_path, "two")
    sealed_cert, sealed_key = ca.issue("node-sealed").write(tmp_path, "sealed", password="s3cret")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a PEM file\n")
    cases = {
        TLSFiles(cert, other_key): f"KEYPLANE_TLS_KEY file [{other_key}] is not the private key of the certificate "
        f"in KEYPLANE_TLS_CERTIFICATE file [{cert}]",
        TLSFiles(junk, key): f"KEYPLANE_TLS_CERTIFICATE file [{junk}] holds no PEM certificate",
        TLSFiles(cert, junk): f"KEYPLANE_TLS_KEY file [{junk}] holds no PEM private key",
        TLSFiles(sealed_cert, sealed_key): f"KEYPLANE_TLS_KEY file [{sealed_key}] is encrypted: "
        "set KEYPLANE_TLS_KEY_PASSWORD",
        TLSFiles(sealed_cert, sealed_key, "wrong"): f"KEYPLANE_TLS_KEY file [{sealed_key}] cannot be decrypted "
        "with KEYPLANE_TLS_KEY_PASSWORD (wrong password?)",
        TLSFiles(cert, key, authorities=junk): f"KEYPLANE_TLS_CERTIFICATE_AUTHORITIES file [{junk}] "
        "holds no PEM certificate",
        TLSFiles(tmp_path / "gone.pem", key): f"KEYPLANE_TLS_CERTIFICATE file [{tmp_path / 'gone.pem'}] "
        "cannot be read: No such file or directory",
    }
    for files, message in cases.items():
        with pytest.raises(TLSError) as raised:
            load(files)
        assert str(raised.value) == message
        assert "s3cret" not in str(raised.value)


def test_passwords_of_keys(tmp_path: Path, ca: Authority) -> None:
    cert, key = ca.issue("node-sealed").write(tmp_path, "sealed", password="s3cret")
    assert load(TLSFiles(cert, key, "s3cret"))[1].subject.startswith("CN=node-sealed")
    # A password for a key that is not encrypted is not needed, and not an error.
    plain_cert, plain_key = ca.issue("node-plain").write(tmp_path, "plain")
    assert load(TLSFiles(plain_cert, plain_key, "unused"))[1].subject.startswith("CN=node-plain")


def test_check_moves_new_handshakes_to_the_new_certificate(
    tmp_path: Path, ca: Authority, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = ca.issue("node-one").write(tmp_path, "node")
    listener = Listener(TLSFiles(cert, key))
    assert handshake(listener, ca) == "node-one"
    assert listener.check() is False  # nothing changed

    # The same bytes written again: a new stat, not a new certificate.
    cert.write_bytes(cert.read_bytes())
    assert listener.check() is False

    second = ca.issue("node-two")
    second.write(tmp_path, "node")
    with caplog.at_level(logging.INFO, "keyplane.tls"):
        assert listener.check() is True
    assert listener.served.subject.startswith("CN=node-two")
    assert "TLS files reloaded: now serving [CN=node-two" in caplog.text
    assert handshake(listener, ca) == "node-two"

    # Broken replacements (a key of another certificate, then a truncated file) keep node-two.
    caplog.clear()
    key.write_bytes(ca.issue("node-three").key_pem())
    with caplog.at_level(logging.WARNING, "keyplane.tls"):
        assert listener.check() is False
    assert "TLS files changed but cannot be loaded; still serving [CN=node-two" in caplog.text
    assert f"KEYPLANE_TLS_KEY file [{key}] is not the private key" in caplog.text
    assert handshake(listener, ca) == "node-two"
    assert listener.check() is False  # warned once per change, not at every look
    cert.write_bytes(second.cert_pem()[:100])
    assert listener.check() is False
    assert handshake(listener, ca) == "node-two"

    # Once the files are whole again, the next look serves them.
    third = ca.issue("node-four")
    third.write(tmp_path, "node")
    assert listener.check() is True
    assert handshake(listener, ca) == "node-four"


def test_a_renamed_over_file_with_the_same_time_and_size_is_seen(tmp_path: Path, ca: Authority) -> None:
    cert, key = ca.issue("node-one").write(tmp_path, "node")
    listener = Listener(TLSFiles(cert, key))
    stat = os.stat(cert)
    new_cert, new_key = ca.issue("node-two").write(tmp_path, "staged")
    os.utime(new_cert, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(new_key, key)
    os.replace(new_cert, cert)
    assert listener.check() is True
    assert handshake(listener, ca) == "node-two"


def test_client_certificates_checked_against_the_authorities(tmp_path: Path, ca: Authority) -> None:
    cert, key = ca.issue("node-mtls").write(tmp_path, "node")
    cas = ca.write(tmp_path / "ca.pem")
    listener = Listener(TLSFiles(cert, key, authorities=cas, client_authentication="required"))
    alice = ca.issue("alice", server=False).write(tmp_path, "alice")
    assert handshake(listener, ca, alice) == "node-mtls"
    with pytest.raises(ssl.SSLError):
        handshake(listener, ca)
    stranger = Authority("Other CA").issue("mallory", server=False).write(tmp_path, "mallory")
    with pytest.raises(ssl.SSLError):
        handshake(listener, ca, stranger)
    # Reloaded contexts keep asking for client certificates.
    ca.issue("node-mtls-2").write(tmp_path, "node")
    assert listener.check() is True
    assert handshake(listener, ca, alice) == "node-mtls-2"
    with pytest.raises(ssl.SSLError):
        handshake(listener, ca)


def test_the_watcher_thread_reloads(tmp_path: Path, ca: Authority) -> None:
    cert, key = ca.issue("node-one").write(tmp_path, "node")
    listener = Listener(TLSFiles(cert, key), poll_seconds=0.05)
    listener.start()
    try:
        ca.issue("node-two").write(tmp_path, "node")
        for _ in range(200):
            if listener.served.subject.startswith("CN=node-two"):
                break
            time.sleep(0.05)
        assert handshake(listener, ca) == "node-two"
    finally:
        listener.stop()
    assert listener._thread is not None and not listener._thread.is_alive()


def test_a_new_authorities_file_applies_to_new_handshakes(tmp_path: Path, ca: Authority) -> None:
    cert, key = ca.issue("node-mtls").write(tmp_path, "node")
    cas = ca.write(tmp_path / "ca.pem")
    listener = Listener(TLSFiles(cert, key, authorities=cas, client_authentication="required"))
    alice = ca.issue("alice", server=False).write(tmp_path, "alice")
    other = Authority("Other CA")
    bob = other.issue("bob", server=False).write(tmp_path, "bob")
    assert handshake(listener, ca, alice) == "node-mtls"
    other.write(cas)
    assert listener.check() is True
    assert handshake(listener, ca, bob) == "node-mtls"
    with pytest.raises(ssl.SSLError):
        handshake(listener, ca, alice)
