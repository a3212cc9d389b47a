"""The HTTP listener's TLS: the SSLContext built from PEM files, and its reloading when the files change.

The context handed to the server never changes. A watcher thread polls the files; when they change it builds
a complete new context off the event loop and publishes it, and the server context's SNI callback (run for
every handshake, with or without a server name) moves each new connection onto the newest context. Loading
into the live context instead would race with handshakes running on the event loop, and a half-loaded broken
file would leave it with a certificate and no key; a new context either loads whole or is not used.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from keyplane.config import Settings

# cryptography is imported where certificates are read, not here: its bindings add about 8 MiB to
# the resident memory of every node, and a node without TLS settings never reads a certificate.
if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

log = logging.getLogger("keyplane.tls")

# As Elasticsearch's resource watcher (resource.reload.interval.high): a stat of three files every 5 s.
POLL_SECONDS = 5.0

_VERIFY_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class TLSError(Exception):
    """A TLS setting or PEM file that cannot work; the message names the setting and the file."""


@dataclass(frozen=True)
class TLSFiles:
    """Where the listener's certificate, key and client-certificate authorities come from."""

    certificate: Path
    key: Path
    key_password: str | None = None
    authorities: Path | None = None
    # none, optional or required: applies only with authorities (without them no certificate is asked for).
    client_authentication: str = "optional"

    @classmethod
    def from_settings(cls, settings: Settings) -> TLSFiles | None:
        """The files the settings name, or None for plain HTTP; raises TLSError for an incomplete set."""
        certificate, key = settings.tls_certificate, settings.tls_key
        if certificate is None and key is None:
            extras = [
                name
                for name, value in (
                    ("KEYPLANE_TLS_KEY_PASSWORD", settings.tls_key_password),
                    ("KEYPLANE_TLS_CERTIFICATE_AUTHORITIES", settings.tls_certificate_authorities),
                )
                if value is not None
            ]
            if extras:
                raise TLSError(f"{' and '.join(extras)} need KEYPLANE_TLS_CERTIFICATE and KEYPLANE_TLS_KEY")
            return None
        if certificate is None:
            raise TLSError("KEYPLANE_TLS_KEY is set without KEYPLANE_TLS_CERTIFICATE: give both or neither")
        if key is None:
            raise TLSError("KEYPLANE_TLS_CERTIFICATE is set without KEYPLANE_TLS_KEY: give both or neither")
        if settings.tls_client_authentication == "required" and settings.tls_certificate_authorities is None:
            raise TLSError(
                "KEYPLANE_TLS_CLIENT_AUTHENTICATION=required needs KEYPLANE_TLS_CERTIFICATE_AUTHORITIES, "
                "the authorities whose client certificates are accepted"
            )
        return cls(
            certificate,
            key,
            settings.tls_key_password,
            settings.tls_certificate_authorities,
            settings.tls_client_authentication,
        )

    @property
    def paths(self) -> tuple[Path, ...]:
        both = self.certificate, self.key
        return both if self.authorities is None else (*both, self.authorities)

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        return ssl.CERT_NONE if self.authorities is None else _VERIFY_MODES[self.client_authentication]


@dataclass(frozen=True)
class Served:
    """The certificate a context presents: what the start and reload log lines say."""

    subject: str
    serial: int
    not_after: datetime
    digest: str  # of the files' contents: a rewrite with the same bytes is not a reload

    @property
    def expired(self) -> bool:
        return self.not_after <= datetime.now(UTC)

    def describe(self) -> str:
        return f"[{self.subject}] (serial {self.serial:x}, expires {self.not_after:%Y-%m-%dT%H:%M:%SZ})"


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TLSError(f"{setting} file [{path}] cannot be read: {exc.strerror or exc}") from None


def _certificates(data: bytes, path: Path, setting: str) -> list[x509.Certificate]:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TLSError(f"{setting} file [{path}] holds no PEM certificate") from None


def _load_key(data: bytes, files: TLSFiles) -> PrivateKeyTypes:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    where = f"KEYPLANE_TLS_KEY file [{files.key}]"
    password = files.key_password.encode() if files.key_password else None
    try:
        return serialization.load_pem_private_key(data, password)
    except TypeError:
        if password is None:
            raise TLSError(f"{where} is encrypted: set KEYPLANE_TLS_KEY_PASSWORD") from None
        # A password for a key that is not encrypted is not needed; OpenSSL ignores it too.
        return _load_key(data, TLSFiles(files.certificate, files.key))
    except ValueError:
        if password is not None and b"ENCRYPTED" in data:
            raise TLSError(f"{where} cannot be decrypted with KEYPLANE_TLS_KEY_PASSWORD (wrong password?)") from None
        raise TLSError(f"{where} holds no PEM private key") from None
    except UnsupportedAlgorithm:
        raise TLSError(f"{where} holds a private key of a type that is not supported") from None


def load(files: TLSFiles) -> tuple[ssl.SSLContext, Served]:
    """A server context from the files (TLS 1.2 and later), and the certificate it serves.

    The PEM files are checked first, so that each problem is reported with the setting and file it comes
    from: no certificate, an encrypted key without (or with a wrong) password, a key that is not the
    certificate's. Raises TLSError.
    """
    from cryptography.hazmat.primitives import serialization

    cert_data = _read(files.certificate, "KEYPLANE_TLS_CERTIFICATE")
    key_data = _read(files.key, "KEYPLANE_TLS_KEY")
    ca_data = b"" if files.authorities is None else _read(files.authorities, "KEYPLANE_TLS_CERTIFICATE_AUTHORITIES")
    leaf = _certificates(cert_data, files.certificate, "KEYPLANE_TLS_CERTIFICATE")[0]
    key = _load_key(key_data, files)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise TLSError(
            f"KEYPLANE_TLS_KEY file [{files.key}] is not the private key of the certificate "
            f"in KEYPLANE_TLS_CERTIFICATE file [{files.certificate}]"
        )
    if files.authorities is not None:
        _certificates(ca_data, files.authorities, "KEYPLANE_TLS_CERTIFICATE_AUTHORITIES")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Client-initiated renegotiation costs the server a handshake per request of the client's choosing.
    context.options |= ssl.OP_NO_RENEGOTIATION
    password = files.key_password
    try:
        context.load_cert_chain(files.certificate, files.key, (lambda: password) if password else None)
        if files.authorities is not None:
            context.load_verify_locations(cadata=ca_data.decode("ascii", "replace"))
    except (ssl.SSLError, OSError, ValueError) as exc:
        # The files were checked above, so this is a change between the two reads or a key OpenSSL refuses.
        raise TLSError(
            f"KEYPLANE_TLS_CERTIFICATE [{files.certificate}] and KEYPLANE_TLS_KEY [{files.key}] "
            f"cannot be loaded: {getattr(exc, 'reason', None) or exc}"
        ) from None
    context.verify_mode = files.verify_mode
    digest = hashlib.sha256(b"\0".join((cert_data, key_data, ca_data))).hexdigest()
    return context, Served(leaf.subject.rfc4514_string(), leaf.serial_number, leaf.not_valid_after_utc, digest)


def _fingerprint(paths: tuple[Path, ...]) -> tuple[tuple[int, ...] | None, ...]:
    """What a stat says of each file: a change of content, inode (a renamed-over or re-linked file) or time."""
    marks: list[tuple[int, ...] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            marks.append(None)
            continue
        marks.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(marks)


class Listener:
    """The context the server listens with, serving the newest loadable certificate of the files."""

    def __init__(self, files: TLSFiles, poll_seconds: float = POLL_SECONDS) -> None:
        self.files = files
        self.poll_seconds = poll_seconds
        # Taken before loading, so that a change made while loading is seen at the next poll.
        self._seen = _fingerprint(files.paths)
        self.context, self.served = load(files)
        self._current = self.context
        self.context.sni_callback = self._select
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _select(self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        # On the event loop, once per handshake: one attribute read while the certificate is the first one.
        current = self._current
        if current is not context:
            connection.context = current

    def check(self) -> bool:
        """One look at the files: True when they changed and a new certificate is now served.

        A change that does not load (a wrong key, a half-written file) is logged as a warning and the
        certificate served so far stays; it is tried again when the files change again.
        """
        seen = _fingerprint(self.files.paths)
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            context, served = load(self.files)
        except TLSError as exc:
            log.warning("TLS files changed but cannot be loaded; still serving %s: %s", self.served.describe(), exc)
            return False
        if served.digest == self.served.digest:
            return False
        self._current, self.served = context, served
        log.info("TLS files reloaded: now serving %s", served.describe())
        if served.expired:
            log.warning("the TLS certificate %s has expired: clients will refuse it", served.describe())
        return True

    def start(self) -> None:
        """Watch the files in a thread of their own (never on the event loop) until stop()."""
        self._thread = threading.Thread(target=self._watch, name="keyplane-tls-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_seconds + 1)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - the watcher outlives any one bad look at the files
                log.warning("TLS files could not be checked for changes: %s", exc)

    def client_certificates(self) -> str:
        files = self.files
        if files.authorities is None or files.client_authentication == "none":
            return "no client certificate asked for"
        return f"client certificates {files.client_authentication}, signed by the authorities in [{files.authorities}]"


def announce(listener: Listener | None, host: str, port: int) -> None:
    """The start's one line on TLS: plain text and how to turn TLS on, or the certificate served."""
    if listener is None:
        log.info(
            "TLS is off: HTTP on %s:%d in plain text; set KEYPLANE_TLS_CERTIFICATE and KEYPLANE_TLS_KEY to turn it on",
            host,
            port,
        )
        return
    log.info(
        "TLS is on: HTTPS on %s:%d serving the certificate %s from [%s]; %s; the files are watched for changes",
        host,
        port,
        listener.served.describe(),
        listener.files.certificate,
        listener.client_certificates(),
    )
    if listener.served.expired:
        log.warning("the TLS certificate %s has expired: clients will refuse it", listener.served.describe())


# -- the certificates the settings name, as the SSL certificates API lists them ----------------------


@dataclass(frozen=True)
class CertificateInfo:
    """One certificate of a configured PEM file (Elasticsearch's CertificateInfo)."""

    path: str  # as configured
    format: str
    alias: str | None  # only keystores have aliases; PEM files have none
    subject_dn: str
    serial_number: str  # lower-case hexadecimal, no leading zeros
    has_private_key: bool
    expiry: datetime
    issuer: str

    def sort_key(self) -> tuple[str, bool, str, str]:
        # Elasticsearch orders by path, then alias (none last), then serial number.
        return self.path, self.alias is None, self.alias or "", self.serial_number


@functools.cache
def _java_keywords() -> dict[x509.ObjectIdentifier, str]:
    """The attribute names Java's X500Principal#toString prints; others print as OID.<dotted number>."""
    from cryptography.x509.oid import NameOID

    return {
        NameOID.COMMON_NAME: "CN",
        NameOID.COUNTRY_NAME: "C",
        NameOID.LOCALITY_NAME: "L",
        NameOID.STATE_OR_PROVINCE_NAME: "ST",
        NameOID.ORGANIZATION_NAME: "O",
        NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
        NameOID.STREET_ADDRESS: "STREET",
        NameOID.DOMAIN_COMPONENT: "DC",
        NameOID.USER_ID: "UID",
        NameOID.EMAIL_ADDRESS: "EMAILADDRESS",
        NameOID.SERIAL_NUMBER: "SERIALNUMBER",
        NameOID.SURNAME: "SURNAME",
        NameOID.GIVEN_NAME: "GIVENNAME",
        NameOID.INITIALS: "INITIALS",
        NameOID.GENERATION_QUALIFIER: "GENERATION",
        NameOID.TITLE: "T",
    }


_JAVA_SPECIAL = ',+=\n<>#;\\"'


def _java_attribute(attribute: x509.NameAttribute[str | bytes]) -> str:
    keyword = _java_keywords().get(attribute.oid, f"OID.{attribute.oid.dotted_string}")
    value = attribute.value
    if not isinstance(value, str):  # a bit string: hexadecimal, as RFC 4514 writes it
        return f"{keyword}={attribute.rfc4514_string().partition('=')[2]}"
    # Java quotes a value with special characters or odd spaces rather than escaping each character.
    quoted = any(c in _JAVA_SPECIAL for c in value) or value.startswith((" ", "\n")) or value.endswith(" ")
    quoted = quoted or "  " in value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{keyword}="{escaped}"' if quoted else f"{keyword}={escaped}"


def distinguished_name(name: x509.Name) -> str:
    """A DN as Elasticsearch prints it (Java's X500Principal#toString): most specific part first, parts
    separated by ``, ``, values with special characters quoted."""
    return ", ".join(" + ".join(_java_attribute(a) for a in rdn) for rdn in reversed(name.rdns))


def _pem_certificates(path: Path, with_key: bool) -> list[CertificateInfo]:
    """Each certificate of a PEM file; with ``with_key``, the first is the one the configured key belongs to."""
    from cryptography import x509

    out = []
    for position, cert in enumerate(x509.load_pem_x509_certificates(path.read_bytes())):
        out.append(
            CertificateInfo(
                str(path),
                "PEM",
                None,
                distinguished_name(cert.subject),
                format(cert.serial_number, "x"),
                with_key and position == 0,
                cert.not_valid_after_utc,
                distinguished_name(cert.issuer),
            )
        )
    return out


def configured_certificates(settings: Settings) -> list[CertificateInfo]:
    """The certificates of every PEM file the settings name, read now: the listener's chain (its first
    certificate holds the key), its client-certificate authorities and the upstream cluster's authorities.
    Empty when nothing is configured. A file that cannot be read is left out with a warning. Blocks."""
    sources = [
        (settings.tls_certificate, settings.tls_key is not None),
        (settings.tls_certificate_authorities, False),
        (settings.upstream_ca_certs, False),
    ]
    found: set[CertificateInfo] = set()
    for path, with_key in sources:
        if path is None:
            continue
        try:
            found.update(_pem_certificates(path, with_key))
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it holds no PEM certificate"
            log.warning("certificate file [%s] cannot be read for the SSL certificates API: %s", path, reason)
    return sorted(found, key=CertificateInfo.sort_key)
