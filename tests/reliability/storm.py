"""A disconnect storm against a probe app (``probe_apps``) behind a real server.

``run_storm()`` sends ``total`` requests from ``workers`` client threads over raw
sockets, one connection per request. A seeded share of them (``drop_ratio``) leaves
early: half mid-upload (Content-Length promises 1 MB, a few KiB are sent, then the
socket is closed, every other one with an RST), half mid-download (an endless stream,
the client reads a little and closes). The others upload or download a small body and
check the answer. ``Sampler`` polls the server's RSS, threads and fds with psutil.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from tests.live.rawclient import RawConnection, request_bytes

HOST = "127.0.0.1"
UPLOAD_SIZE = 16384
DOWNLOAD_CHUNKS, DOWNLOAD_SIZE = 8, 8192
KINDS = ("upload", "download", "drop-upload", "drop-download")


def debug(port: int, timeout: float = 10.0) -> dict[str, Any]:
    """The probe's ``/debug`` figures."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", "/debug", headers={"Connection": "close"})
        response = conn.getresponse()
        assert response.status == 200, response.status
        data: dict[str, Any] = json.loads(response.read())
        return data
    finally:
        conn.close()


def process_figures(pid: int) -> dict[str, int]:
    proc = psutil.Process(pid)
    return {"threads": proc.num_threads(), "fds": proc.num_fds(), "rss": proc.memory_info().rss}


@dataclass
class StormResult:
    total: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def drops(self) -> int:
        return self.kinds["drop-upload"] + self.kinds["drop-download"]


def one_request(port: int, kind: str, rng: random.Random) -> str | None:
    """Run one request of ``kind``; returns a failure description or None."""
    reset = rng.random() < 0.5
    if kind == "upload":
        body = rng.randbytes(UPLOAD_SIZE)
        with RawConnection(port, timeout=15.0) as conn:
            conn.send(request_bytes("POST", "/upload", [("Connection", "close")], body))
            response = conn.read_response()
        if response.status != 200 or json.loads(response.body) != {"length": UPLOAD_SIZE}:
            return f"upload: {response.status} {response.body[:80]!r}"
        return None
    if kind == "download":
        target = f"/download?n={DOWNLOAD_CHUNKS}&size={DOWNLOAD_SIZE}"
        with RawConnection(port, timeout=15.0) as conn:
            conn.send(request_bytes("GET", target, [("Connection", "close")]))
            response = conn.read_response()
        if response.status != 200 or len(response.body) != DOWNLOAD_CHUNKS * DOWNLOAD_SIZE:
            return f"download: {response.status} {len(response.body)} bytes"
        return None
    conn = RawConnection(port, timeout=15.0)
    try:
        if kind == "drop-upload":
            head = request_bytes("POST", "/upload", [("Content-Length", "1000000")], b"")
            conn.send(head + rng.randbytes(rng.choice((0, 1024, 8192, 32768))))
            time.sleep(rng.random() * 0.005)
        else:
            conn.send(request_bytes("GET", "/download?size=16384&delay=0.001"))
            response, parser = conn.read_head()
            conn.read_body(response, parser, limit=rng.choice((1, 16384, 65536)))
    except OSError as exc:
        return f"{kind}: {exc!r}"
    finally:
        conn.close(reset=reset)
    return None


def run_storm(
    port: int, *, total: int = 2000, drop_ratio: float = 0.3, workers: int = 8, seed: int = 7
) -> StormResult:
    rng = random.Random(seed)
    plan: list[str] = []
    for _ in range(total):
        if rng.random() < drop_ratio:
            plan.append(rng.choice(("drop-upload", "drop-download")))
        else:
            plan.append(rng.choice(("upload", "download")))
    result = StormResult(total=total, kinds=Counter(plan))
    lock = threading.Lock()
    cursor = iter(enumerate(plan))

    def worker() -> None:
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                return
            index, kind = item
            try:
                failure = one_request(port, kind, random.Random(seed * 100003 + index))
            except (OSError, AssertionError, ValueError) as exc:
                failure = f"{kind}: {exc!r}"
            if failure is not None:
                with lock:
                    result.failures.append(failure)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120.0)
        assert not thread.is_alive(), "a storm client thread hung"
    result.seconds = time.monotonic() - started
    return result


class Sampler:
    """Samples a process's RSS, threads and fds every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.samples.append((time.monotonic() - start, process_figures(self.pid)))
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def peak(self, key: str) -> int:
        return max((s[key] for _, s in self.samples), default=0)


def pool_thread(name: str) -> bool:
    """Threads of the adapters' pools: WSGIToASGI workers, ASGIToWSGI loop threads and
    the loops' default executors (``asyncio_N``: blocking ``wsgi.input`` reads)."""
    return name.startswith(("asyncio", "bridgeway-"))


def wait_settled(
    port: int,
    pid: int,
    leaks: Callable[[dict[str, Any]], dict[str, int]],
    *,
    timeout: float = 15.0,
) -> dict[str, Any]:
    """Poll the server until ``leaks(figures)`` is all zeros (or ``timeout``); returns
    the last figures (the caller asserts on them)."""
    deadline = time.monotonic() + timeout
    while True:
        figures = {**debug(port), **process_figures(pid)}
        if not any(leaks(figures).values()) or time.monotonic() > deadline:
            return figures
        time.sleep(0.2)
