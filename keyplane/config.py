"""Settings, each declared once: environment variable, flag, default, parser and help.

The fields of :class:`Settings` are the declarations. ``keyplane serve``'s flags and help, the reading of
the environment and the README's settings table are derived from them, so they cannot disagree. A value
is parsed once, here: the rest of the code gets milliseconds, literals and paths, never the text.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, cast, overload

from keyplane import ES_VERSION, settings_file
from keyplane.apikeys.hashing import ALGORITHMS
from keyplane.errors import ParseError
from keyplane.timevalue import parse_duration_ms

T = TypeVar("T")
Synchronous = Literal["full", "normal"]
LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """How one setting is given, read and explained."""

    env: str
    # As a user would write it (shown in help and the README, parsed for the field's default); None: unset.
    default: str | None
    # The text as a value; raises ValueError("must be ...") when the text cannot work.
    parse: Callable[[str], T]
    # One sentence in Markdown: the README shows it as is, --help without the backticks.
    help: str
    flag: str | None = None
    # A secret is never echoed: not in an error message, not in help, not in check-settings.
    secret: bool = False
    # What applies when an optional setting is not given.
    unset: str = "–"
    # Its name in keyplane.yml, dotted (Elasticsearch's name where Elasticsearch has the setting); None:
    # it cannot be given in the file.
    key: str | None = None
    # The attribute of Settings, filled in from the field (see SETTINGS).
    name: str = ""

    @property
    def shown_default(self) -> str:
        return self.unset if self.default is None else self.default

    @property
    def takes_list(self) -> bool:
        """Whether keyplane.yml may give a YAML list (read as the comma-separated text)."""
        return self.parse is _names


@overload
def setting(
    *, env: str, default: str, parse: Callable[[str], T], help: str, key: str | None, flag: str | None = None
) -> T: ...


@overload
def setting(
    *,
    env: str,
    default: None,
    parse: Callable[[str], T],
    help: str,
    key: str | None,
    flag: str | None = None,
    secret: bool = False,
    unset: str = "–",
) -> T | None: ...


def setting(
    *,
    env: str,
    default: str | None,
    parse: Callable[[str], Any],
    help: str,
    key: str | None,
    flag: str | None = None,
    secret: bool = False,
    unset: str = "–",
) -> Any:
    """A field of :class:`Settings` whose default is its declared text, parsed like any given value."""
    declaration = Setting(env, default, parse, help, flag, secret, unset, key)
    return field(default=None if default is None else parse(default), metadata={"setting": declaration})


# Parsers. Each message completes "<flag or variable> ..., not [<text>]".


def _text(text: str) -> str:
    return text


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError("must be a port number (0 to 65535)")
    return int(text)


def _database_url(text: str) -> str:
    if not text.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise ValueError("must be a postgresql:// (or sqlite:///) URL")
    return text


def _version(text: str) -> str:
    parts = text.split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise ValueError("must be a version such as 9.5.0")
    return text


def _hash_algorithm(text: str) -> str:
    if text not in ALGORITHMS:
        raise ValueError(f"must be one of {', '.join(ALGORITHMS)}")
    return text


def _positive_duration_ms(text: str) -> int:
    try:
        ms = parse_duration_ms(text, "duration")
    except ParseError:
        raise ValueError("must be a duration such as 7d or 1h") from None
    if ms <= 0:
        raise ValueError("must be a positive duration such as 7d or 1h")
    return ms


def _synchronous(text: str) -> Synchronous:
    value = text.lower()
    if value == "full":
        return "full"
    if value == "normal":
        return "normal"
    raise ValueError("must be full or normal")


def _upstream_url(text: str) -> str:
    scheme, _, rest = text.partition("://")
    host = rest.split("/", 1)[0]
    if scheme not in ("http", "https") or not host or "@" in host or "?" in rest or "#" in rest:
        raise ValueError("must be an http:// or https:// URL without credentials, such as https://es.example:9200")
    return text.rstrip("/")


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise ValueError("must be the path of a readable PEM file")
    return path


def _strict_switch(text: str) -> bool:
    value = text.lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise ValueError("must be true or false")


def _switch(text: str) -> bool:
    # Anything else is off, as it always was.
    return text in ("1", "true", "yes")


def _client_authentication(text: str) -> str:
    value = text.lower()
    if value not in ("none", "optional", "required"):
        raise ValueError("must be none, optional or required")
    return value


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list; the package that reads it checks the names."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise ValueError("must be a positive whole number")
    return int(text)


def _log_format(text: str) -> LogFormat:
    value = text.lower()
    if value == "text":
        return "text"
    if value == "json":
        return "json"
    raise ValueError("must be text or json")


def _log_level(text: str) -> LogLevel:
    # Elasticsearch's logger.level says WARN (log4j's name).
    value = "warning" if text.lower() == "warn" else text.lower()
    for level in LOG_LEVELS:
        if value == level:
            return level
    raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")


class SettingsError(ValueError):
    """Given settings that cannot work, each as a message for the command line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    host: str = setting(
        key="http.host",
        flag="--host",
        env="KEYPLANE_HOST",
        default="127.0.0.1",
        parse=_text,
        help="address to listen on",
    )
    port: int = setting(
        key="http.port", flag="--port", env="KEYPLANE_PORT", default="9200", parse=_port, help="port to listen on"
    )
    data_dir: Path = setting(
        key="path.data",
        flag="--data-dir",
        env="KEYPLANE_DATA_DIR",
        default="./data",
        parse=Path,
        help="directory of the SQLite file `keyplane.db` and the key file `secrets.key`; one process per data dir",
    )
    database_url: str | None = setting(
        key="keyplane.database.url",
        flag="--database-url",
        env="KEYPLANE_DATABASE_URL",
        default=None,
        parse=_database_url,
        help="`postgresql://user@host:port/db` to keep the state in PostgreSQL instead of SQLite",
        unset="SQLite in the data dir",
    )
    elastic_password: str | None = setting(
        key="bootstrap.password",
        env="ELASTIC_PASSWORD",
        default=None,
        parse=_text,
        help="password of the reserved superuser `elastic`, set at every start",
        secret=True,
        unset="generated at the first start and printed once",
    )
    secrets_key: str | None = setting(
        key="keyplane.secrets.key",
        env="KEYPLANE_SECRETS_KEY",
        default=None,
        parse=_text,
        help="base64 of 32 bytes that encrypts connector secrets at rest; all nodes need the same key",
        secret=True,
        unset="the key file `secrets.key` in the data dir, created if missing",
    )
    node_name: str = setting(
        key="node.name",
        env="KEYPLANE_NODE_NAME",
        default="keyplane",
        parse=_text,
        help="the node's name in `GET /` and the nodes APIs",
    )
    cluster_name: str = setting(
        key="cluster.name",
        env="KEYPLANE_CLUSTER_NAME",
        default="keyplane",
        parse=_text,
        help="the cluster's name in `GET /` and the cluster APIs",
    )
    es_version: str = setting(
        key="keyplane.es_version",
        env="KEYPLANE_ES_VERSION",
        default=ES_VERSION,
        parse=_version,
        help="the Elasticsearch version `GET /` reports (clients and the connectors service check it); "
        f"the APIs follow Elasticsearch {ES_VERSION} whatever it says",
    )
    api_key_hash: str = setting(
        key="xpack.security.authc.api_key.hashing.algorithm",
        env="KEYPLANE_API_KEY_HASH",
        default="ssha256",
        parse=_hash_algorithm,
        help=f"hash of stored API-key secrets: {' or '.join(f'`{name}`' for name in ALGORITHMS)}",
    )
    api_key_retention_ms: int = setting(
        key="xpack.security.authc.api_key.delete.retention_period",
        env="KEYPLANE_API_KEY_RETENTION",
        default="7d",
        parse=_positive_duration_ms,
        help="how long invalidated and expired API keys are kept before they are deleted",
    )
    api_key_last_used_granularity_ms: int = setting(
        key="keyplane.api_key.last_used.granularity",
        env="KEYPLANE_API_KEY_LAST_USED_GRANULARITY",
        default="1h",
        parse=_positive_duration_ms,
        help="precision of an API key's `last_used`: one write per key per interval",
    )
    # Elasticsearch's translog durability: full is "request", normal is "async".
    sqlite_synchronous: Synchronous = setting(
        key="keyplane.sqlite.synchronous",
        env="KEYPLANE_SQLITE_SYNCHRONOUS",
        default="full",
        parse=_synchronous,
        help="`full`: a write is on disk (fsync) before it is acknowledged; `normal`: faster, but a power cut or "
        "an OS crash can lose the last acknowledged writes; a killed process loses nothing either way",
    )
    # Elasticsearch's action.destructive_requires_name, true by default since 8.0; its own REST test
    # clusters run with it false.
    destructive_requires_name: bool = setting(
        key="action.destructive_requires_name",
        env="KEYPLANE_DESTRUCTIVE_REQUIRES_NAME",
        default="true",
        parse=_strict_switch,
        help="`true`: deleting indices needs their names, not wildcards or `_all`; "
        "`false` lets a pattern delete every index it matches",
    )
    test_mode: bool = setting(
        key="keyplane.test_mode",
        env="KEYPLANE_TEST_MODE",
        default="0",
        parse=_switch,
        help="`1` (or `true`, `yes`) adds `POST /_keyplane/_reset` (superuser only), which wipes all state "
        "but the `elastic` user; for test harnesses only",
    )

    upstream_url: str | None = setting(
        key="keyplane.upstream.url",
        flag="--upstream-url",
        env="KEYPLANE_UPSTREAM_URL",
        default=None,
        parse=_upstream_url,
        help="`https://host:9200` of an Elasticsearch or OpenSearch cluster that holds the content indices: "
        "their requests are forwarded there once Keyplane has authenticated and authorized them",
        unset="content indices are kept by Keyplane",
    )
    upstream_api_key: str | None = setting(
        key="keyplane.upstream.api_key",
        env="KEYPLANE_UPSTREAM_API_KEY",
        default=None,
        parse=_text,
        help="encoded API key (the `encoded` of a created key) Keyplane presents to the upstream cluster",
        secret=True,
    )
    upstream_username: str | None = setting(
        key="keyplane.upstream.username",
        env="KEYPLANE_UPSTREAM_USERNAME",
        default=None,
        parse=_text,
        help="user Keyplane authenticates as on the upstream cluster, with `KEYPLANE_UPSTREAM_PASSWORD` "
        "(instead of an API key)",
    )
    upstream_password: str | None = setting(
        key="keyplane.upstream.password",
        env="KEYPLANE_UPSTREAM_PASSWORD",
        default=None,
        parse=_text,
        help="password of `KEYPLANE_UPSTREAM_USERNAME`",
        secret=True,
    )
    upstream_ca_certs: Path | None = setting(
        key="keyplane.upstream.ssl.certificate_authorities",
        env="KEYPLANE_UPSTREAM_CA_CERTS",
        default=None,
        parse=_existing_file,
        help="PEM file of the certificate authorities that sign the upstream cluster's certificate",
        unset="the system's authorities",
    )
    upstream_verify_certificates: bool = setting(
        key="keyplane.upstream.ssl.verify_certificates",
        env="KEYPLANE_UPSTREAM_VERIFY_CERTIFICATES",
        default="true",
        parse=_strict_switch,
        help="`false` accepts any certificate from the upstream cluster (tests only: it allows interception)",
    )
    upstream_timeout_ms: int = setting(
        key="keyplane.upstream.timeout",
        env="KEYPLANE_UPSTREAM_TIMEOUT",
        default="60s",
        parse=_positive_duration_ms,
        help="longest wait for the upstream cluster's answer before the request fails with 504",
    )

    # Issue 13: operations. Declared here; each package that reads them owns what they mean.
    config_dir: Path = setting(
        key=None,  # the file is found through it
        flag="--config-dir",
        env="KEYPLANE_CONFIG_DIR",
        default="./config",
        parse=Path,
        help="directory of the settings file `keyplane.yml`, of the file realm's `users`, `users_roles` "
        "and `service_tokens`, and of the file roles' `roles.yml` (Elasticsearch's config directory)",
    )
    tls_certificate: Path | None = setting(
        key="xpack.security.http.ssl.certificate",
        flag="--tls-certificate",
        env="KEYPLANE_TLS_CERTIFICATE",
        default=None,
        parse=_existing_file,
        help="PEM file of the HTTP listener's certificate chain; with `KEYPLANE_TLS_KEY` it turns TLS on",
        unset="plain HTTP",
    )
    tls_key: Path | None = setting(
        key="xpack.security.http.ssl.key",
        flag="--tls-key",
        env="KEYPLANE_TLS_KEY",
        default=None,
        parse=_existing_file,
        help="PEM file of the certificate's private key",
    )
    tls_key_password: str | None = setting(
        key="xpack.security.http.ssl.key_passphrase",
        env="KEYPLANE_TLS_KEY_PASSWORD",
        default=None,
        parse=_text,
        help="passphrase of an encrypted `KEYPLANE_TLS_KEY`",
        secret=True,
    )
    tls_certificate_authorities: Path | None = setting(
        key="xpack.security.http.ssl.certificate_authorities",
        env="KEYPLANE_TLS_CERTIFICATE_AUTHORITIES",
        default=None,
        parse=_existing_file,
        help="PEM file of the authorities whose client certificates the listener accepts",
        unset="no client certificates asked for",
    )
    tls_client_authentication: str = setting(
        key="xpack.security.http.ssl.client_authentication",
        env="KEYPLANE_TLS_CLIENT_AUTHENTICATION",
        default="optional",
        parse=_client_authentication,
        help="with `KEYPLANE_TLS_CERTIFICATE_AUTHORITIES`: `required`, `optional` or `none`",
    )
    audit_enabled: bool = setting(
        key="xpack.security.audit.enabled",
        env="KEYPLANE_AUDIT_ENABLED",
        default="false",
        parse=_strict_switch,
        help="`true` writes the security audit log, one JSON line per event",
    )
    audit_file: Path | None = setting(
        key="keyplane.audit.file",
        env="KEYPLANE_AUDIT_FILE",
        default=None,
        parse=Path,
        help="file the audit log is appended to",
        unset="`audit.json` in the data dir",
    )
    audit_include: tuple[str, ...] = setting(
        key="xpack.security.audit.logfile.events.include",
        env="KEYPLANE_AUDIT_EVENTS_INCLUDE",
        # Elasticsearch's default: every type but authentication_success (a line per request on its own).
        default="access_denied, access_granted, anonymous_access_denied, authentication_failed, connection_denied, "
        "tampered_request, run_as_denied, run_as_granted, security_config_change",
        parse=_names,
        help="comma-separated audit event types to write, or `_all`",
    )
    audit_exclude: tuple[str, ...] | None = setting(
        key="xpack.security.audit.logfile.events.exclude",
        env="KEYPLANE_AUDIT_EVENTS_EXCLUDE",
        default=None,
        parse=_names,
        help="comma-separated audit event types never written",
        unset="none",
    )
    audit_buffer: int = setting(
        key="keyplane.audit.buffer",
        env="KEYPLANE_AUDIT_BUFFER",
        default="10000",
        parse=_positive_int,
        help="audit events held for the writer; when it is full, events are counted as dropped, never waited for",
    )
    metrics_enabled: bool = setting(
        key="keyplane.metrics.enabled",
        env="KEYPLANE_METRICS_ENABLED",
        default="true",
        parse=_strict_switch,
        help="`true` serves Prometheus metrics at `GET /_keyplane/metrics` to callers with the `monitor` "
        "cluster privilege",
    )
    api_key_max_expiration_ms: int | None = setting(
        key="keyplane.api_key.max_expiration",
        env="KEYPLANE_API_KEY_MAX_EXPIRATION",
        default=None,
        parse=_positive_duration_ms,
        help="longest `expiration` a REST API key may have when created, granted, cloned or updated",
        unset="no limit",
    )
    api_key_require_expiration: bool = setting(
        key="keyplane.api_key.require_expiration",
        env="KEYPLANE_API_KEY_REQUIRE_EXPIRATION",
        default="false",
        parse=_strict_switch,
        help="`true` refuses REST API keys that never expire",
    )
    cross_cluster_api_key_max_expiration_ms: int | None = setting(
        key="keyplane.cross_cluster_api_key.max_expiration",
        env="KEYPLANE_CROSS_CLUSTER_API_KEY_MAX_EXPIRATION",
        default=None,
        parse=_positive_duration_ms,
        help="longest `expiration` a cross-cluster API key may have when created or updated",
        unset="no limit",
    )
    cross_cluster_api_key_require_expiration: bool = setting(
        key="keyplane.cross_cluster_api_key.require_expiration",
        env="KEYPLANE_CROSS_CLUSTER_API_KEY_REQUIRE_EXPIRATION",
        default="false",
        parse=_strict_switch,
        help="`true` refuses cross-cluster API keys that never expire",
    )

    log_format: LogFormat = setting(
        key="keyplane.log.format",
        flag="--log-format",
        env="KEYPLANE_LOG_FORMAT",
        default="text",
        parse=_log_format,
        help="`text`: a line per event for a terminal; `json`: one JSON object per line with Elastic Common Schema "
        "field names (`@timestamp`, `log.level`, `message`, `http.request.id`...) for a log shipper",
    )
    log_level: LogLevel = setting(
        key="logger.level",
        flag="--log-level",
        env="KEYPLANE_LOG_LEVEL",
        default="info",
        parse=_log_level,
        help="least severe log lines written: `debug` (one line per request), `info`, `warning` or `error`",
    )

    def __post_init__(self) -> None:
        problems = []
        credentials = self.upstream_api_key, self.upstream_username, self.upstream_password
        if self.upstream_url is None and any(credentials):
            problems.append("KEYPLANE_UPSTREAM_API_KEY, _USERNAME and _PASSWORD need KEYPLANE_UPSTREAM_URL")
        if self.upstream_api_key and (self.upstream_username or self.upstream_password):
            problems.append("KEYPLANE_UPSTREAM_API_KEY and KEYPLANE_UPSTREAM_USERNAME exclude each other")
        elif bool(self.upstream_username) != bool(self.upstream_password):
            problems.append("KEYPLANE_UPSTREAM_USERNAME and KEYPLANE_UPSTREAM_PASSWORD go together")
        if problems:
            raise SettingsError(problems)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, flags: Mapping[str, str | None] | None = None
    ) -> Settings:
        """The settings given as flags (by attribute name), else in the environment, else in the settings
        file ``keyplane.yml`` of the config dir, else their defaults: see :meth:`resolve`."""
        return cls.resolve(environ, flags).settings

    @classmethod
    def resolve(
        cls, environ: Mapping[str, str] | None = None, flags: Mapping[str, str | None] | None = None
    ) -> Resolved:
        """The settings and where each one came from.

        ``environ`` defaults to the process environment; ``flags`` are by attribute name. An empty value
        counts as not given, in the file too. The config dir comes from its flag or variable only (the
        file is found through it); a missing dir or file gives no settings. Raises SettingsError listing
        every problem: unreadable file, unknown key, value that cannot work.
        """
        environ = os.environ if environ is None else environ
        flags = flags or {}
        config_dir = _given(_BY_NAME["config_dir"], environ, flags)
        path = Path(config_dir[1] if config_dir else _BY_NAME["config_dir"].shown_default) / settings_file.NAME
        problems: list[str] = []
        try:
            in_file = _file_texts(path, problems)
        except settings_file.SettingsFileError as exc:
            in_file, problems = {}, [str(exc)]
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        texts: dict[str, str] = {}
        for declared in SETTINGS:
            given = _given(declared, environ, flags)
            if given is not None:
                label, text = given
                sources[declared.name] = label
            elif declared.name in in_file:
                label, text = f"[{declared.key}] in {path}", in_file[declared.name]
                sources[declared.name] = str(path)
            else:
                continue
            texts[declared.name] = text
            try:
                values[declared.name] = declared.parse(text)
            except ValueError as exc:
                problems.append(
                    f"{label} {exc}" if declared.secret else f"{label} {exc}, not [{shown(declared, text)}]"
                )
        if problems:
            raise SettingsError(problems)
        return Resolved(cls(**values), sources, texts, path)


@dataclass(frozen=True)
class Resolved:
    """Settings with their sources: what ``keyplane check-settings`` shows."""

    settings: Settings
    # By attribute name: the flag, variable or settings file a setting came from; absent: its default.
    sources: Mapping[str, str]
    # By attribute name: the text given (absent: the default applies).
    texts: Mapping[str, str]
    # The settings file looked for (it may not exist).
    file: Path


def _given(
    declared: Setting[Any], environ: Mapping[str, str], flags: Mapping[str, str | None]
) -> tuple[str, str] | None:
    """(flag or variable, text) when the command line or the environment gives the setting."""
    text = flags.get(declared.name)
    if text:
        return declared.flag or declared.name, text
    text = environ.get(declared.env)
    return (declared.env, text) if text else None


def _file_texts(path: Path, problems: list[str]) -> dict[str, str]:
    """The file's values by attribute name, as the text a flag would give; a problem per unusable key."""
    texts: dict[str, str] = {}
    for key, entry in settings_file.read(path).items():
        declared = _BY_KEY.get(key)
        if declared is None:
            problems.append(_unknown(key, path))
        elif isinstance(entry.value, tuple) and not declared.takes_list:
            problems.append(f"[{key}] in {path} must be a single value, not a list")
        elif isinstance(entry.value, tuple):
            texts[declared.name] = ",".join(_text_of(item) for item in entry.value)
        else:
            texts[declared.name] = _text_of(entry.value)
    return {name: text for name, text in texts.items() if text}


def _text_of(value: settings_file.Scalar) -> str:
    """A YAML boolean as the text a flag would give (YAML's True and yes are "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _unknown(key: str, path: Path) -> str:
    message = f"unknown setting [{key}] in {path}"
    # Names people carry over: the variable, the flag, the attribute, Elasticsearch's old path.conf.
    aliases = {alias: declared for declared in SETTINGS for alias in _aliases(declared)}
    near = difflib.get_close_matches(key.lower(), list(aliases), n=1, cutoff=0.6)
    if not near:
        return message
    declared = aliases[near[0]]
    if declared.key is None:
        flag = f"{declared.flag} or " if declared.flag else ""
        return f"{message}; the config dir cannot be set in the file it holds: use {flag}{declared.env}"
    return f"{message}; did you mean [{declared.key}]?"


def _aliases(declared: Setting[Any]) -> list[str]:
    names = [declared.env.lower(), declared.name]
    if declared.key:
        names.append(declared.key)
    if declared.flag:
        names.append(declared.flag.lstrip("-"))
    if declared.name == "config_dir":
        names.append("path.conf")
    return names


def shown(declared: Setting[Any], text: str) -> str:
    """A given value as a message may echo it: ``<set>`` for a secret, a URL's password (a database URL may
    hold one) hidden."""
    return "<set>" if declared.secret else _URL_PASSWORD.sub(r"\1<hidden>@", text)


_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


SETTINGS: tuple[Setting[Any], ...] = tuple(
    replace(cast("Setting[Any]", item.metadata["setting"]), name=item.name) for item in fields(Settings)
)
_BY_NAME = {declared.name: declared for declared in SETTINGS}
_BY_KEY = {declared.key: declared for declared in SETTINGS if declared.key}
