"""Peak-RSS probe for WSGIToASGI, run in a fresh process by test_w2a_memory.py.

Usage, from the repository root:
    python -m tests.w2a.w2a_memory {upload|download|control} {asyncio|trio} [MiB]

Streams MiB (default 1024) through the adapter with the in-process driver, each chunk a
freshly allocated 64 KiB ``bytes`` (so any queueing shows up as memory), and prints one
JSON line: the peak-RSS growth in MiB, the bytes that arrived, and the seconds taken.
``control`` is a download whose consumer keeps every chunk: it shows that the probe
does see memory that is held (its growth is about the size streamed).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Iterable, Iterator

import anyio

from bridgeway import WSGIToASGI
from bridgeway._types import Environ, StartResponse
from tests.support.w2a_driver import Peer, call, content_length, make_scope

CHUNK = 65536
FILL = [bytes([i]) for i in range(256)]


def peak_rss_mib() -> float:
    """This process's peak RSS in MiB. Linux's ``VmHWM``, not ``ru_maxrss``: the latter
    carries the parent's peak across fork+exec, so a child of a big pytest process
    would start at the parent's peak and show no growth at all."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB elsewhere


def fresh_chunks(total: int) -> Iterator[bytes]:
    for i in range(total // CHUNK):
        # A new object each time, nothing shared, and written to: bytes(CHUNK) would be
        # calloc'ed zero pages that never become resident, hiding any queueing.
        yield FILL[i & 255] * CHUNK


class Uploader:
    def __init__(self) -> None:
        self.received = 0

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        while data := stream.read(CHUNK):
            self.received += len(data)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(self.received).encode()]


def downloader(total: int) -> WSGIToASGI:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", str(total))])
        return fresh_chunks(total)

    return WSGIToASGI(app)


class SlowPeer(Peer):
    """A consumer that stops to rest for 10 ms after every 64 chunks (4 MiB)."""

    async def send(self, message: dict[str, object]) -> None:  # type: ignore[override]
        await super().send(message)
        if self.body_messages % 64 == 0 and message.get("body"):
            await anyio.sleep(0.01)


async def run(mode: str, total: int) -> dict[str, float]:
    # warm up: threads, imports and the loop's own buffers exist before the baseline
    if mode == "upload":
        app = Uploader()
        adapter = WSGIToASGI(app)
        scope = make_scope("POST", headers=content_length(total))
        await call(adapter, make_scope("POST", headers=content_length(CHUNK)), Peer([bytes(CHUNK)]))
        app.received = 0
        before = peak_rss_mib()
        started = time.perf_counter()
        peer = await call(adapter, scope, Peer(fresh_chunks(total)), seconds=60)
        arrived = app.received
        assert peer.body == str(total).encode()
    else:
        adapter = downloader(total)
        await call(downloader(CHUNK * 4), make_scope(), Peer(keep_body=False))
        before = peak_rss_mib()
        started = time.perf_counter()
        slow = SlowPeer(keep_body=mode == "control")
        peer = await call(adapter, make_scope(), slow, seconds=60)
        arrived = peer.body_size
        assert peer.complete
    elapsed = time.perf_counter() - started
    return {"growth_mib": peak_rss_mib() - before, "bytes": arrived, "seconds": elapsed}


def main() -> None:
    mode, backend = sys.argv[1], sys.argv[2]
    total = int(sys.argv[3]) * 2**20 if len(sys.argv) > 3 else 2**30
    result = anyio.run(run, mode, total, backend=backend)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
