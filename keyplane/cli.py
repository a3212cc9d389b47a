"""The ``keyplane`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from keyplane import ES_VERSION, __version__
from keyplane.config import Settings, problems

DESCRIPTION = f"""\
Keyplane {__version__}: an Elasticsearch-compatible server (REST API level {ES_VERSION}) for the
security API-key family (API keys, users, roles, privileges) and the Connector family.

Official Elasticsearch clients and curl work against it unchanged. By default the state lives in
an embedded SQLite file in the data directory; give a PostgreSQL URL to share one database
between several stateless nodes.
"""

SERVE_EPILOG = """\
environment:
  KEYPLANE_HOST, KEYPLANE_PORT, KEYPLANE_DATA_DIR, KEYPLANE_DATABASE_URL
                        defaults for the flags above
  ELASTIC_PASSWORD      password of the reserved superuser 'elastic', set at every start;
                        without it a first start generates one and prints it once
  KEYPLANE_SECRETS_KEY  base64 of 32 bytes that encrypts connector secrets at rest; without
                        it a key file is created in the data dir (all nodes need the same key)
  KEYPLANE_API_KEY_HASH ssha256 (default) or pbkdf2, for stored API-key secrets
  KEYPLANE_API_KEY_RETENTION
                        how long invalidated and expired API keys are kept (default 7d)
  KEYPLANE_API_KEY_LAST_USED_GRANULARITY
                        precision of an API key's last_used (default 1h)
  KEYPLANE_SQLITE_SYNCHRONOUS
                        full (default): a write is on disk before it is acknowledged;
                        normal: faster, but a power cut or OS crash can lose the last
                        acknowledged writes (a killed process loses nothing either way)
  KEYPLANE_TEST_MODE=1  enables POST /_keyplane/_reset (superuser only), which wipes all
                        state except the 'elastic' user; for test harnesses only

examples:
  ELASTIC_PASSWORD=changeme keyplane serve
  keyplane serve --port 9201 --database-url postgresql://127.0.0.1:5432/keyplane
  curl -u elastic:changeme http://127.0.0.1:9200/_security/_authenticate
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keyplane", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"keyplane {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    env = Settings.from_env()
    serve = sub.add_parser(
        "serve",
        help="run the server",
        description="Run the Keyplane server until interrupted.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default=env.host, help=f"address to listen on (default: {env.host})")
    serve.add_argument("--port", type=int, default=env.port, help=f"port to listen on (default: {env.port})")
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=env.data_dir,
        help=f"directory of the SQLite store and the secrets key file, for one process (default: {env.data_dir})",
    )
    serve.add_argument(
        "--database-url",
        default=env.database_url,
        help="postgresql://user@host:port/db to keep the state in PostgreSQL instead of SQLite",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.print_help()
        return 0 if args.command is None else 2
    import uvicorn

    from keyplane.app import create_app

    settings = Settings.from_env()
    settings.host, settings.port = args.host, args.port
    settings.data_dir, settings.database_url = args.data_dir, args.database_url
    for problem in problems(settings):
        parser.error(problem)
    # Whatever the server creates (data dir, SQLite files, key file) holds hashes or keys: owner-only.
    os.umask(0o077)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=args.log_level,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
