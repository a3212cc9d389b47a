"""What a fuzz run found, grouped so that one bug reads as one line with one example request."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz.harness import Outcome, Tally, server_errors

# Set to a file to have each run append its distinct failures there (the team's findings list).
FINDINGS_VARIABLE = "KEYPLANE_FUZZ_FINDINGS"


@dataclass
class Finding:
    api: str
    method: str
    status: int
    cause: str  # the traceback's last line, or what the client saw
    example: Outcome
    count: int = 1


def _path(outcome: Outcome) -> str:
    return outcome.request.target.split(b"?", 1)[0].decode("latin-1")


def group(failures: list[Outcome], log: str) -> list[Finding]:
    causes: dict[str, str] = {}
    for where, last in server_errors(log):
        causes.setdefault(where, last)
    found: dict[tuple[str, str, int, str], Finding] = {}
    for outcome in failures:
        req = outcome.request
        cause = causes.get(f"{req.method} {_path(outcome)}") or outcome.detail[:160].replace("\n", " ")
        key = (req.api, req.method, outcome.status, cause)
        if key in found:
            found[key].count += 1
        else:
            found[key] = Finding(req.api, req.method, outcome.status, cause, outcome)
    return sorted(found.values(), key=lambda f: (-f.count, f.api))


def describe(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"- {f.status} x{f.count} {f.api} {f.method}: {f.cause}")
        lines.append("    " + f.example.request.describe().replace("\n", "\n    "))
        lines.append(f"    answer ({f.example.seconds:.2f}s): {f.example.detail[:200]!r}")
    return "\n".join(lines)


def log_excerpt(log: str, limit: int = 20) -> str:
    """Each distinct traceback of the log as one line: after what, which exception, where, its root cause."""
    distinct = sorted({f"{where} -> {what}" for where, what in server_errors(log)})
    more = f"\n  ... and {len(distinct) - limit} more" if len(distinct) > limit else ""
    return "\n".join(f"  {line}" for line in distinct[:limit]) + more


def summary(name: str, tally: Tally, seed: int, store: str) -> str:
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(tally.statuses.items()))
    return (
        f"{name}: {tally.sent} requests on {store} (seed {seed}; replay with KEYPLANE_FUZZ_SEED={seed}); "
        f"statuses {codes}; slowest {tally.slowest:.2f}s; failures {tally.failure_count}"
    )


def record(name: str, store: str, seed: int, findings: list[Finding], log: str) -> None:
    target = os.environ.get(FINDINGS_VARIABLE)
    if not target or not findings and "Traceback" not in log:
        return
    with Path(target).open("a") as out:
        out.write(f"\n## {name} on {store}, seed {seed}\n\n")
        out.write(describe(findings) + "\n")
        if "Traceback" in log:
            out.write("\nserver log, tracebacks:\n" + log_excerpt(log, 100) + "\n")
