"""Request shapes read from Elasticsearch's REST API spec, with sample bodies from the YAML REST tests.

The spec gives every API's paths, path parts, methods, query parameters (with types and enum
options) and whether it takes a body; it says nothing about the body's fields. Those come from
the conformance kit's YAML tests: every ``do: <api>: {body: ...}`` there is a real body of that
API, which the fuzzer then mutates field by field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
SPEC_DIR = CONFORMANCE / "spec"
TESTS_DIR = CONFORMANCE / "tests"

# The APIs Keyplane implements; the document and index APIs come later (issue 8 keeps them at a low rate).
IMPLEMENTED = ("security.", "connector.", "info", "ping", "license.get", "xpack.info", "cluster.health")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Path_:
    template: str
    methods: tuple[str, ...]
    parts: tuple[str, ...]


@dataclass(frozen=True, eq=False)  # hashed by identity: load() makes each once
class Api:
    name: str
    paths: tuple[Path_, ...]
    params: tuple[Param, ...]
    body: str  # "none", "optional" or "required"
    samples: tuple[Any, ...] = field(default=())

    @property
    def implemented(self) -> bool:
        return self.name.startswith(IMPLEMENTED)


def missing_reason() -> str | None:
    if not SPEC_DIR.is_dir():
        return f"the REST API spec is not at {SPEC_DIR} (the shared/ folder beside the repository)"
    return None


@cache
def load() -> tuple[Api, ...]:
    """Every API of the spec folder, sorted by name so that a seed draws the same shapes everywhere."""
    samples = _samples()
    apis = []
    for path in sorted(SPEC_DIR.glob("*.json")):
        ((name, spec),) = json.loads(path.read_text()).items()
        paths = tuple(Path_(p["path"], tuple(p["methods"]), tuple(p.get("parts", {}))) for p in spec["url"]["paths"])
        params = tuple(
            Param(n, p.get("type", "string"), tuple(str(o) for o in p.get("options", ())))
            for n, p in sorted(spec.get("params", {}).items())
        )
        body = spec.get("body")
        kind = "none" if body is None else ("required" if body.get("required") else "optional")
        apis.append(Api(name, paths, params, kind, tuple(samples.get(name, ()))))
    return tuple(apis)


_STASH = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_.]*)\}?")


def _samples() -> dict[str, list[Any]]:
    """Bodies of each API in the YAML tests; stashed values (``$id``) become placeholders."""
    found: dict[str, list[Any]] = {}
    if not TESTS_DIR.is_dir():
        return found
    for path in sorted(TESTS_DIR.rglob("*.yml")):
        if "es-docs" in path.parts:
            continue
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError:
            continue
        for api, body in _bodies(docs):
            body = _resolve_text(body)
            if body is not None and body not in found.setdefault(api, []):
                found[api].append(body)
    return found


def _bodies(node: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        step = node.get("do")
        if isinstance(step, dict):
            for api, args in step.items():
                if isinstance(args, dict) and "body" in args:
                    out.append((api, args["body"]))
        for value in node.values():
            out += _bodies(value)
    elif isinstance(node, list):
        for value in node:
            out += _bodies(value)
    return out


def _resolve_text(body: Any) -> Any:
    if isinstance(body, str):
        try:
            body = json.loads(_STASH.sub(lambda m: "@" + m.group(1), body))
        except json.JSONDecodeError:
            return None  # ndjson and the like: the fuzzer makes its own
    return _placeholders(body)


def _placeholders(value: Any) -> Any:
    if isinstance(value, date):  # YAML reads unquoted timestamps as datetimes; the JSON had strings
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, str) and value.startswith("$"):
        return "@" + value.lstrip("${").rstrip("}")
    if isinstance(value, dict):
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return value
