"""Send requests from several keep-alive clients at once and keep what the server answered."""

from __future__ import annotations

import queue
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.fuzz.requests import Request

TIMEOUT = 30.0  # an answer slower than this is a stall, reported as a failure


@dataclass
class Outcome:
    request: Request
    status: int  # 0: no answer (connection dropped, or the timeout)
    detail: str
    seconds: float


@dataclass
class Tally:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[Outcome] = field(default_factory=list)
    failure_count: int = 0
    slowest: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome, failed: bool) -> None:
        with self.lock:
            self.sent += 1
            self.statuses[outcome.status] += 1
            self.slowest = max(self.slowest, outcome.seconds)
            if failed:
                self.failure_count += 1
                if len(self.failures) < 500:
                    self.failures.append(outcome)


def send_raw(host: str, port: int, req: Request) -> tuple[int, str]:
    """One request over its own socket, bytes as they are; the status of the first answer."""
    head = [req.method.encode() + b" " + req.target + b" HTTP/1.1", f"host: {host}:{port}".encode()]
    head += [k + b": " + v for k, v in req.headers]
    names = {k.lower() for k, _ in req.headers}
    body = req.body
    if b"transfer-encoding" in names:
        # Well-formed chunks, so that the server reads the body in several pieces.
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in _chunks(body, 4096)) + b"0\r\n\r\n"
    elif b"content-length" in names:
        declared = int(dict(req.headers)[b"content-length"])
        body = body.ljust(declared)  # a body shorter than declared would only wait for our timeout
    else:
        head.append(b"content-length: %d" % len(body))
    head.append(b"connection: close")
    data = b"\r\n".join(head) + b"\r\n\r\n" + body
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may answer and close before reading everything
        answer = b""
        try:
            while b"\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
            answer += sock.recv(2048)
        except OSError:
            pass
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    if not match:
        return 0, f"no answer: {answer[:200]!r}"
    return int(match.group(1)), answer[:600].decode("latin-1")


class Sender:
    """Worker threads, each with its own keep-alive client, fed from a bounded queue."""

    def __init__(
        self,
        url: str,
        tally: Tally,
        is_failure: Callable[[Outcome], bool],
        workers: int = 6,
    ) -> None:
        self.url = url
        parts = httpx.URL(url)
        self.host, self.port = parts.host, parts.port or 80
        self.tally = tally
        self.is_failure = is_failure
        self.queue: queue.Queue[Callable[[], Request] | None] = queue.Queue(maxsize=workers * 8)
        self.errors: list[str] = []  # the fuzzer's own failures, not the server's
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for thread in self.threads:
            thread.start()

    def submit(self, make: Callable[[], Request]) -> None:
        """Queue a request; ``make`` runs in a worker, so big bodies are built off the drawing thread."""
        self.queue.put(make)

    def close(self) -> Tally:
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()
        return self.tally

    def _client(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=TIMEOUT)
        # The plan decides these; httpx would otherwise send its own on every request.
        del client.headers["accept"]
        del client.headers["accept-encoding"]
        return client

    def _work(self) -> None:
        client = self._client()
        try:
            while True:
                make = self.queue.get()
                if make is None:
                    return
                try:
                    req = make()
                except Exception as exc:  # noqa: BLE001 - a fuzzer bug must not stop the run silently
                    self.errors.append(f"building a request failed: {type(exc).__name__}: {exc}")
                    continue
                try:
                    outcome = self._send(client, req)
                except Exception as exc:  # noqa: BLE001
                    self.errors.append(f"sending failed: {type(exc).__name__}: {exc}\n{req.describe()}")
                    continue
                if outcome.status == 0 and not req.raw_socket:
                    client.close()  # start over with a fresh connection after a dropped one
                    client = self._client()
                self.tally.add(outcome, self.is_failure(outcome))
        finally:
            client.close()

    def _send(self, client: httpx.Client, req: Request) -> Outcome:
        start = time.monotonic()
        try:
            if req.raw_socket:
                status, detail = send_raw(self.host, self.port, req)
            else:
                res = client.request(
                    req.method,
                    self.url,
                    headers=req.headers,
                    content=req.body,
                    extensions={"target": req.target},
                )
                status, detail = res.status_code, res.text[:600]
        except (httpx.HTTPError, OSError) as exc:
            status, detail = 0, f"no answer: {type(exc).__name__}: {exc}"
        return Outcome(req, status, detail, time.monotonic() - start)


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


_LOG_LINE = re.compile(r"(\d{4}-\d\d-\d\d |INFO:|WARNING:|ERROR:|CRITICAL:)")


def server_errors(log: str) -> list[tuple[str, str]]:
    """(what the log line before it says, where and what) of each traceback in a server log.

    For "unhandled error on GET /x" the first part is "GET /x". The second names the outermost
    exception, the frame that raised it, and the innermost cause ("caused by:" chains).
    """
    found = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("Traceback (most recent call last)") or (i and lines[i - 1] == "caused by:"):
            continue
        header = lines[i - 1] if i else ""
        if "unhandled error on" in header:
            where = header.split("unhandled error on", 1)[1].strip()
        else:
            where = header.split(": ", 1)[-1].strip()
        block = []
        for following in lines[i + 1 :]:
            if _LOG_LINE.match(following):
                break
            block.append(following)
        kinds = [b for b in block if b and not b.startswith((" ", "Traceback", "caused by:", "During", "The above"))]
        frames = [b.strip() for b in block if b.startswith("  File ")]
        first = kinds[0] if kinds else "?"
        site = ""
        for b in block:
            if b == first:
                break
            if b.startswith("  File "):
                site = b.strip()
        what = f"{first} ({site})" if site else first
        if kinds and kinds[-1] != first:
            what += f"; root cause {kinds[-1]}"
        found.append((where, what if frames or kinds else header))
    return found


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak) of a process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out
