"""A node on the default settings (embedded SQLite, no TLS, no upstream cluster) does not load the
libraries only other settings use: each adds megabytes of resident memory to every node (issue 11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# What the server process imports and builds before it listens (keyplane serve), then the modules
# loaded by then. A process of its own: this one has imported everything the other tests use.
_PROBE = """
import json, sys
from keyplane import cli, server
from keyplane.app import create_app
from keyplane.config import Settings
create_app(Settings.from_env({"KEYPLANE_DATA_DIR": sys.argv[1], "ELASTIC_PASSWORD": "changeme"}))
print(json.dumps(sorted(sys.modules)))
"""

# Loaded by TLS settings (certificates), an upstream cluster (httpx and its command line's pygments).
NOT_ON_DEFAULTS = ("cryptography.x509", "httpx", "pygments")


def _modules_after_start(data_dir: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYPLANE_", "ELASTIC_"))}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(data_dir)], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_default_node_leaves_tls_and_upstream_libraries_unloaded(tmp_path: Path) -> None:
    loaded = _modules_after_start(tmp_path / "data")
    assert "keyplane.services" in loaded  # the probe did build the app
    assert [name for name in NOT_ON_DEFAULTS if name in loaded] == []
