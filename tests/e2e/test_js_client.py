"""The official JavaScript client (@elastic/elasticsearch 9), unchanged, against a real server.

``js/check.mjs`` drives the client and prints what it saw; the assertions live here. Needs Node.js
and the npm registry (CI machines have both); skips with the reason when either is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import PASSWORD, Server

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="module")
def js_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed")
    target = tmp_path_factory.mktemp("js")
    for name in ("package.json", "package-lock.json", "check.mjs"):
        shutil.copy(JS / name, target / name)
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.skip(f"npm could not install @elastic/elasticsearch: {done.stderr.strip()[-300:]}")
    return target


def _run(js_dir: Path, server: Server) -> dict[str, Any]:
    env = {**os.environ, "KEYPLANE_URL": server.url, "ELASTIC_PASSWORD": PASSWORD}
    done = subprocess.run(["node", "check.mjs"], cwd=js_dir, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_official_js_client(js_dir: Path, server: Server) -> None:
    seen = _run(js_dir, server)
    assert seen["info"]["version"]["build_flavor"] == "default"
    assert seen["user_authenticate"]["username"] == "js_user"
    assert seen["user_has_privileges"]["cluster"] == {"monitor": True, "manage_security": False}
    assert seen["user_has_privileges"]["index"] == {"logs-app": {"read": True, "write": False}}
    assert seen["user_put_user"] == {"status": 403, "type": "security_exception", "is_response_error": True}

    assert seen["key"]["has_secret"] and seen["key"]["has_encoded"]
    assert seen["key_authenticate"]["authentication_type"] == "api_key"
    assert seen["key_authenticate"]["api_key"] == {
        "id": seen["key"]["id"],
        "name": "js-key",
        "managed_by": "elasticsearch",
    }
    assert seen["update_first"] == {"updated": True}
    assert seen["update_second"] == {"updated": False}
    listed = seen["query"]["api_keys"]
    assert seen["query"]["total"] == 1 and listed[0]["metadata"] == {"environment": {"level": 2}}
    assert listed[0]["role_descriptors"]["role-a"]["indices"][0]["privileges"] == ["write"]
    assert seen["invalidate"]["invalidated_api_keys"] == [seen["key"]["id"]]
    assert seen["invalidated_key_authenticate"] == {"status": 401}

    assert seen["cc_update"] == {"updated": True}
    cross = seen["cc_get"]["api_keys"][0]
    assert cross["type"] == "cross_cluster" and cross["metadata"] == {"application": "replication"}
    assert cross["access"] == {"replication": [{"names": ["archive"], "allow_restricted_indices": False}]}

    assert seen["connector_put"] == {"id": "js-connector", "result": "created"}
    assert seen["secret_get"]["value"] == "my-secret"
    assert seen["connector_api_key_id"] == {"result": "updated"}
    assert seen["connector_configuration"] == seen["connector_values"] == {"result": "updated"}
    connector = seen["connector_get"]
    assert connector["api_key_id"] == "my-api-key-id"
    assert connector["api_key_secret_id"] == seen["secret_get"]["id"]
    assert connector["configuration"]["folder"]["value"] == "/docs"
    assert connector["status"] == "configured"
    assert seen["sync_jobs"]["count"] == 1
    assert seen["sync_jobs"]["results"][0]["id"] == seen["sync_job"]["id"]
    assert seen["connector_missing"] == {"status": 404, "type": "resource_not_found_exception"}
