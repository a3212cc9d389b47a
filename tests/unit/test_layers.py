"""The layering rule: domain code imports neither the web framework nor the database.

Only a package's ``backends/sql.py`` may reach the store; only ``keyplane.api``, ``keyplane.http``,
``keyplane.app``, ``keyplane.services`` and ``keyplane.cli`` may know the web side.
"""

from __future__ import annotations

import ast
from pathlib import Path

import keyplane

ROOT = Path(keyplane.__file__).parent
DOMAIN = ["security", "apikeys", "connectors", "tokens", "profiles", "service_accounts"]
FORBIDDEN = ("sqlalchemy", "asyncpg", "starlette", "uvicorn", "keyplane.store", "keyplane.http", "keyplane.api")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def test_domain_packages_import_neither_web_nor_database() -> None:
    modules = [p for package in DOMAIN for p in (ROOT / package).rglob("*.py") if p.name != "sql.py"]
    assert len(modules) > 20
    offenders = {str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if _forbidden(n)) for path in modules}
    assert {path: names for path, names in offenders.items() if names} == {}
