"""Settings, read from command-line flags with environment variables as defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 9200
    data_dir: Path = Path("data")
    database_url: str | None = None
    elastic_password: str | None = None
    test_mode: bool = False
    node_name: str = "keyplane"
    cluster_name: str = "keyplane"
    api_key_hash: str = "ssha256"
    api_key_retention: str = "7d"
    api_key_last_used_granularity: str = "1h"
    secrets_key: str | None = None
    # full: a commit is on disk before it is acknowledged; normal: faster, but a power cut or an OS
    # crash can lose the last acknowledged writes (Elasticsearch's translog durability async).
    sqlite_synchronous: str = "full"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            host=env.get("KEYPLANE_HOST", cls.host),
            port=int(env.get("KEYPLANE_PORT", cls.port)),
            data_dir=Path(env.get("KEYPLANE_DATA_DIR", str(cls.data_dir))),
            database_url=env.get("KEYPLANE_DATABASE_URL") or None,
            elastic_password=env.get("ELASTIC_PASSWORD") or None,
            test_mode=env.get("KEYPLANE_TEST_MODE", "") in ("1", "true", "yes"),
            node_name=env.get("KEYPLANE_NODE_NAME", cls.node_name),
            cluster_name=env.get("KEYPLANE_CLUSTER_NAME", cls.cluster_name),
            api_key_hash=env.get("KEYPLANE_API_KEY_HASH", cls.api_key_hash),
            secrets_key=env.get("KEYPLANE_SECRETS_KEY") or None,
            sqlite_synchronous=env.get("KEYPLANE_SQLITE_SYNCHRONOUS", cls.sqlite_synchronous).lower(),
            api_key_retention=env.get("KEYPLANE_API_KEY_RETENTION", cls.api_key_retention),
            api_key_last_used_granularity=env.get(
                "KEYPLANE_API_KEY_LAST_USED_GRANULARITY", cls.api_key_last_used_granularity
            ),
        )


def problems(settings: Settings) -> list[str]:
    """Settings that cannot work, each as a message for the command line."""
    from keyplane.apikeys.hashing import ALGORITHMS
    from keyplane.errors import ParseError
    from keyplane.timevalue import parse_duration_ms

    out = []
    if settings.api_key_hash not in ALGORITHMS:
        out.append(f"KEYPLANE_API_KEY_HASH must be one of {', '.join(ALGORITHMS)}, not [{settings.api_key_hash}]")
    for name, value in (
        ("KEYPLANE_API_KEY_RETENTION", settings.api_key_retention),
        ("KEYPLANE_API_KEY_LAST_USED_GRANULARITY", settings.api_key_last_used_granularity),
    ):
        try:
            if parse_duration_ms(value, name) <= 0:
                out.append(f"{name} must be a positive duration such as 7d or 1h, not [{value}]")
        except ParseError:
            out.append(f"{name} must be a duration such as 7d or 1h, not [{value}]")
    if settings.sqlite_synchronous not in ("full", "normal"):
        out.append(f"KEYPLANE_SQLITE_SYNCHRONOUS must be full or normal, not [{settings.sqlite_synchronous}]")
    if settings.database_url and not settings.database_url.startswith(("postgresql://", "postgres://", "sqlite:///")):
        out.append(f"--database-url must be a postgresql:// (or sqlite:///) URL, not [{settings.database_url}]")
    return out
