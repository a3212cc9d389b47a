"""TLS on the HTTP listener: a real server with certificates made by a test CA, and the official client."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from elastic_transport import TlsError, TransportError
from elasticsearch import Elasticsearch

from tests.certs import Authority, Issued, common_name
from tests.e2e.server import PASSWORD, Server, on_store

# The watcher looks every 5 s; a reload is seen within two looks even on a loaded machine.
RELOAD_WAIT = 20.0


def tls_env(cert: Path, key: Path, **more: str) -> dict[str, str]:
    return {"KEYPLANE_TLS_CERTIFICATE": str(cert), "KEYPLANE_TLS_KEY": str(key), **more}


def client(srv: Server, **options: object) -> Elasticsearch:
    return Elasticsearch(srv.url, basic_auth=("elastic", PASSWORD), max_retries=0, request_timeout=10, **options)  # type: ignore[arg-type]


def peer_subject(port: int, ca: Path) -> str:
    """The common name of the certificate a new connection is served."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            der = conn.getpeercert(binary_form=True)
    return common_name(der)


def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = RELOAD_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def replace_files(issued: Issued, cert: Path, key: Path) -> None:
    """Write both files beside their targets and rename them over, as a certificate tool would."""
    for target, data in ((cert, issued.cert_pem()), (key, issued.key_pem())):
        staged = target.with_suffix(target.suffix + ".new")
        staged.write_bytes(data)
        os.replace(staged, target)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> tuple[Authority, Path]:
    ca = Authority()
    return ca, ca.write(tmp_path_factory.mktemp("ca") / "ca.crt")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, authority: tuple[Authority, Path]) -> Iterator[Server]:
    ca, _ = authority
    pki = tmp_path_factory.mktemp("pki")
    cert, key = ca.issue("node-one").write(pki, "node")
    with on_store(tmp_path_factory.mktemp("tls"), extra_env=tls_env(cert, key)) as srv:
        yield srv


def test_official_client_verifying_the_test_ca(tls_server: Server, authority: tuple[Authority, Path]) -> None:
    _, ca_file = authority
    assert tls_server.url.startswith("https://127.0.0.1:")
    es = client(tls_server, ca_certs=str(ca_file))
    try:
        assert es.security.authenticate()["username"] == "elastic"
        assert es.info()["tagline"] == "You Know, for Search"
    finally:
        es.close()
    log = tls_server.output()
    assert f"TLS is on: HTTPS on 127.0.0.1:{tls_server.port} serving the certificate [CN=node-one," in log
    assert "expires 20" in log
    assert "Uvicorn running on https://" in log


def test_plain_http_to_the_tls_port_fails(tls_server: Server) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{tls_server.port}/", auth=("elastic", PASSWORD), timeout=5)
    # The listener is unharmed and says nothing about it in the log.
    assert "Traceback" not in tls_server.output()


def test_a_client_that_does_not_trust_the_ca_fails(tls_server: Server) -> None:
    es = client(tls_server)  # the system's authorities only
    try:
        with pytest.raises(TlsError) as refused:
            es.security.authenticate()
        assert "CERTIFICATE_VERIFY_FAILED" in repr(refused.value)
    finally:
        es.close()


def test_tls_1_2_is_the_floor(tls_server: Server, authority: tuple[Authority, Path]) -> None:
    _, ca_file = authority

    def handshake(version: ssl.TLSVersion) -> str | None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(str(ca_file))
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # lets this client offer the old protocols at all
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = version
        with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                return conn.version()

    assert handshake(ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        handshake(ssl.TLSVersion.TLSv1_1)


def test_plain_http_is_the_default_and_says_so(server: Server) -> None:
    assert server.url.startswith("http://")
    assert (
        f"TLS is off: HTTP on 127.0.0.1:{server.port} in plain text; "
        "set KEYPLANE_TLS_CERTIFICATE and KEYPLANE_TLS_KEY to turn it on"
    ) in server.output()


def test_client_certificate_required(tmp_path: Path, authority: tuple[Authority, Path]) -> None:
    ca, ca_file = authority
    cert, key = ca.issue("node-mtls").write(tmp_path, "node")
    alice_cert, alice_key = ca.issue("alice", server=False).write(tmp_path, "alice")
    stranger_cert, stranger_key = Authority("Other CA").issue("mallory", server=False).write(tmp_path, "mallory")
    env = tls_env(
        cert,
        key,
        KEYPLANE_TLS_CERTIFICATE_AUTHORITIES=str(ca_file),
        KEYPLANE_TLS_CLIENT_AUTHENTICATION="required",
    )
    with on_store(data_dir(tmp_path), extra_env=env) as srv:
        assert "client certificates required, signed by the authorities in" in srv.output()
        for options in ({}, {"client_cert": str(stranger_cert), "client_key": str(stranger_key)}):
            refused = client(srv, ca_certs=str(ca_file), **options)
            try:
                with pytest.raises(TransportError):
                    refused.security.authenticate()
            finally:
                refused.close()
        es = client(srv, ca_certs=str(ca_file), client_cert=str(alice_cert), client_key=str(alice_key))
        try:
            assert es.security.authenticate()["username"] == "elastic"
        finally:
            es.close()
        # Refused handshakes are the client's problem: nothing in the server's log, no traceback.
        assert "Traceback" not in srv.output()
        assert "ERROR" not in srv.output()


def test_new_certificate_served_without_a_restart(tmp_path: Path, authority: tuple[Authority, Path]) -> None:
    ca, ca_file = authority
    cert, key = ca.issue("node-one").write(tmp_path, "node")
    with on_store(data_dir(tmp_path), extra_env=tls_env(cert, key)) as srv:
        es = client(srv, ca_certs=str(ca_file))
        try:
            assert peer_subject(srv.port, ca_file) == "node-one"
            assert es.security.authenticate()["username"] == "elastic"  # a pooled connection, kept open

            second = ca.issue("node-two")
            replace_files(second, cert, key)
            wait_for(lambda: peer_subject(srv.port, ca_file) == "node-two", "the new certificate is served")
            assert f"now serving [CN=node-two,O=Keyplane tests] (serial {second.certificate.serial_number:x}" in (
                srv.output()
            )
            assert es.security.authenticate()["username"] == "elastic"

            # A broken replacement (a key that is not the certificate's) is refused; node-two stays.
            cert.write_bytes(ca.issue("node-three").cert_pem())
            wait_for(lambda: "cannot be loaded; still serving [CN=node-two" in srv.output(), "a warning")
            assert f"KEYPLANE_TLS_KEY file [{key}] is not the private key of the certificate" in srv.output()
            assert peer_subject(srv.port, ca_file) == "node-two"
            fresh = client(srv, ca_certs=str(ca_file))
            try:
                assert fresh.security.authenticate()["username"] == "elastic"
            finally:
                fresh.close()
        finally:
            es.close()
        assert "Traceback" not in srv.output()


def test_encrypted_key_with_its_password(tmp_path: Path, authority: tuple[Authority, Path]) -> None:
    ca, ca_file = authority
    cert, key = ca.issue("node-sealed").write(tmp_path, "node", password="key-passphrase")
    assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    env = tls_env(cert, key, KEYPLANE_TLS_KEY_PASSWORD="key-passphrase")
    with on_store(data_dir(tmp_path), extra_env=env) as srv:
        es = client(srv, ca_certs=str(ca_file))
        try:
            assert es.security.authenticate()["username"] == "elastic"
        finally:
            es.close()
        assert "key-passphrase" not in srv.output()


def start_fails(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``keyplane serve`` with these settings, expected to stop before listening."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KEYPLANE_", "ELASTIC_PASSWORD"))}
    args = [sys.executable, "-m", "keyplane.cli", "serve", "--port", "0", "--data-dir", str(tmp_path / "data")]
    done = subprocess.run(args, env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    return done


def test_a_key_that_is_not_the_certificates_stops_the_start(tmp_path: Path, authority: tuple[Authority, Path]) -> None:
    ca, _ = authority
    cert, _ = ca.issue("node-one").write(tmp_path, "one")
    _, other_key = ca.issue("node-two").write(tmp_path, "two")
    done = start_fails(tmp_path, tls_env(cert, other_key))
    assert (
        f"keyplane: cannot start: KEYPLANE_TLS_KEY file [{other_key}] is not the private key of the certificate "
        f"in KEYPLANE_TLS_CERTIFICATE file [{cert}]"
    ) in done.stderr
    assert not (tmp_path / "data").exists()  # stopped before the store was opened


def test_other_unusable_tls_settings_stop_the_start(tmp_path: Path, authority: tuple[Authority, Path]) -> None:
    ca, _ = authority
    cert, key = ca.issue("node-sealed").write(tmp_path, "node", password="right")
    wrong = start_fails(tmp_path, tls_env(cert, key, KEYPLANE_TLS_KEY_PASSWORD="wrong"))
    assert f"KEYPLANE_TLS_KEY file [{key}] cannot be decrypted with KEYPLANE_TLS_KEY_PASSWORD" in wrong.stderr
    assert "wrong" not in wrong.stderr.replace("wrong password?", "")
    alone = start_fails(tmp_path, {"KEYPLANE_TLS_CERTIFICATE": str(cert)})
    assert "KEYPLANE_TLS_CERTIFICATE is set without KEYPLANE_TLS_KEY: give both or neither" in alone.stderr
