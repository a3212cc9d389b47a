"""The layering rules, read off the code's syntax trees.

- Domain code imports neither the web framework nor the database: only a package's
  ``backends/sql.py`` may reach the store; only ``keyplane.api``, ``keyplane.http``, ``keyplane.app``,
  ``keyplane.services`` and ``keyplane.cli`` may know the web side.
- Handlers (``keyplane.api``) call services, never repositories.
- ``keyplane.services`` wires the domain: it imports nothing from ``keyplane.api`` and runs no SQL.
- Response envelopes are built at the edge: no domain or backend module writes their keys.
- Domain packages depend downwards only: the query engine on nothing of the domain, security on the
  query engine, and the credential and connector packages on security (the authentication chain
  asks its realms through interfaces; ``apikeys.realm`` and ``service_accounts.realm`` implement them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import keyplane

ROOT = Path(keyplane.__file__).parent
DOMAIN = ["security", "apikeys", "connectors", "tokens", "profiles", "service_accounts", "query", "indices"]
FORBIDDEN = ("sqlalchemy", "asyncpg", "starlette", "uvicorn", "keyplane.store", "keyplane.http", "keyplane.api")

# A domain package may import those of a lower rank only (and the shared modules keyplane/*.py).
RANK = {
    "query": 0,
    "security": 1,
    "apikeys": 2,
    "tokens": 2,
    "profiles": 2,
    "service_accounts": 2,
    "connectors": 2,
    "indices": 2,
}
# Imports between packages of the same rank, each with its reason.
SIDEWAYS = {
    ("service_accounts", "apikeys"),  # service tokens' secrets are hashed as API-key secrets are
    ("connectors", "indices"),  # the connector system indices are targets of the indices' by-query runs
}

# Keys that only Elasticsearch's responses carry (envelopes, bulk results, aggregation buckets).
RESPONSE_KEYS = {
    "_doc",
    "_nodes",
    "_primary_term",
    "_seq_no",
    "_shards",
    "acknowledged",
    "_sort",
    "after_key",
    "aggregations",
    "api_key",
    "api_keys",
    "buckets",
    "count",
    "created",
    "details",
    "doc_count",
    "encoded",
    "error_count",
    "error_details",
    "errors",
    "found",
    "has_all_requested",
    "hits",
    "implicitly_granted",
    "invalidated_api_keys",
    "invalidated_tokens",
    "limited_by",
    "managed_by",
    "previously_invalidated_api_keys",
    "previously_invalidated_tokens",
    "profile_uid",
    "result",
    "results",
    "total",
}
# Stored documents that happen to use one of those names for a field of their own.
DOCUMENT_FIELDS = {
    ("apikeys/backends/sql.py", "limited_by"),  # the stored key's snapshot of its owner's roles
    ("connectors/core.py", "created"),  # the connector status "created" (its transition table)
    ("connectors/filtering.py", "errors"),  # a connector's filtering validation errors
}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in prefixes)


def _domain_modules(*, backends: bool) -> list[Path]:
    paths = [p for package in DOMAIN if (ROOT / package).is_dir() for p in (ROOT / package).rglob("*.py")]
    return [p for p in paths if backends or p.name != "sql.py"]


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_domain_packages_import_neither_web_nor_database() -> None:
    modules = _domain_modules(backends=False)
    assert len(modules) > 20
    offenders = {_relative(path): sorted(n for n in _imports(path) if _under(n, FORBIDDEN)) for path in modules}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_handlers_never_touch_a_repository() -> None:
    offenders: dict[str, list[str]] = {}
    for path in sorted((ROOT / "api").rglob("*.py")):
        found = sorted(n for n in _imports(path) if ".backends" in n or _under(n, ("keyplane.store",)))
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Attribute) and (node.attr == "repo" or node.attr.endswith("_repo")):
                found.append(f"line {node.lineno}: .{node.attr}")
        if found:
            offenders[_relative(path)] = found
    assert offenders == {}


def test_wiring_imports_nothing_from_the_rest_layer_and_runs_no_sql() -> None:
    names = _imports(ROOT / "services.py")
    assert sorted(n for n in names if _under(n, ("keyplane.api", "keyplane.http", "sqlalchemy", "asyncpg"))) == []


def test_domain_and_backends_build_no_response_envelopes() -> None:
    offenders: list[str] = []
    for path in _domain_modules(backends=True):
        for node in ast.walk(_tree(path)):
            keys: list[ast.expr | None] = []
            if isinstance(node, ast.Dict):
                keys = list(node.keys)
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                keys = [node.slice]  # doc["key"] = ...
            for key in keys:
                if isinstance(key, ast.Constant) and key.value in RESPONSE_KEYS:
                    if (_relative(path), key.value) not in DOCUMENT_FIELDS:
                        offenders.append(f"{_relative(path)}:{node.lineno} {key.value!r}")
    assert sorted(offenders) == []


def test_domain_packages_depend_downwards() -> None:
    offenders: list[str] = []
    for package, rank in RANK.items():
        for path in (ROOT / package).rglob("*.py"):
            for name in _imports(path):
                parts = name.split(".")
                other = parts[1] if len(parts) > 1 and parts[0] == "keyplane" else None
                if other in RANK and other != package and RANK[other] >= rank and (package, other) not in SIDEWAYS:
                    offenders.append(f"{_relative(path)} imports {name}")
    assert sorted(offenders) == []


def test_upstream_forwarding_knows_neither_the_web_side_nor_the_store() -> None:
    # keyplane.upstream is an HTTP client and its authorization rules: the dispatcher hands it a request
    # and renders what it returns; it must not reach back into the REST layer or the database.
    modules = sorted((ROOT / "upstream").rglob("*.py"))
    assert modules
    offenders = {_relative(path): sorted(n for n in _imports(path) if _under(n, FORBIDDEN)) for path in modules}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_audit_and_metrics_stay_beside_the_request_path() -> None:
    # keyplane.audit and keyplane.metrics are fed by the dispatcher (keyplane.http) and the wiring
    # (keyplane.app): they never reach back into the REST layer, and only the metrics' own
    # backends/sql.py reads the store (their aggregates of stored state).
    modules = sorted([*(ROOT / "audit").rglob("*.py"), *(ROOT / "metrics").rglob("*.py")])
    assert len(modules) >= 8
    offenders: dict[str, list[str]] = {}
    for path in modules:
        forbidden = FORBIDDEN if path.name != "sql.py" else ("starlette", "uvicorn", "keyplane.http", "keyplane.api")
        names = sorted(n for n in _imports(path) if _under(n, forbidden))
        if names:
            offenders[_relative(path)] = names
    assert offenders == {}
