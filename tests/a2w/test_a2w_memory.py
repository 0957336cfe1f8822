"""Memory stays flat under ASGIToWSGI for a 1 GiB upload and a 1 GiB streamed response
to a slow reader (A2W-RECV-01, A2W-SEND-07).

Each run happens in a fresh interpreter so that ``VmHWM`` (the peak resident set)
belongs to that run alone: the script warms up (imports, one small request), takes the
peak, moves 1 GiB, and prints the growth of the peak as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.servers  # 1 GiB through a child interpreter: not the fast lane

MiB = 1 << 20
GiB = 1 << 30

_PRELUDE = """
import asyncio, hashlib, json, resource, sys, time
from tests.support.a2w_driver import EndlessInput, make_environ, serving

def peak() -> int:
    # VmHWM, not ru_maxrss: ru_maxrss carries the parent's peak across fork+exec.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
"""

_UPLOAD = """
TOTAL = {total}
largest = 0

async def app(scope, receive, send):
    global largest
    if scope["type"] != "http":
        return
    digest, size = hashlib.sha256(), 0
    while True:
        message = await receive()
        body = message.get("body", b"")
        largest = max(largest, len(body))
        digest.update(body)
        size += len(body)
        if not message.get("more_body"):
            break
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": str(size).encode()}})

with serving(app) as adapter:
    def run(total):
        stream = EndlessInput(total)
        environ = make_environ("POST", stream=stream, content_length=str(total))
        body = b"".join(adapter(environ, lambda *a: None))
        return int(body), stream
    run(1 << 20)
    before = peak()
    started = time.monotonic()
    size, stream = run(TOTAL)
    seconds = time.monotonic() - started
    print(json.dumps({{"growth": peak() - before, "size": size, "largest": largest,
                      "max_read": stream.max_read, "pos": stream.pos, "seconds": seconds}}))
"""

_DOWNLOAD = """
TOTAL = {total}
CHUNK = 1 << 20
ahead = 0
sent = 0

async def app(scope, receive, send):
    global sent
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    for i in range(TOTAL // CHUNK if scope["path"] == "/big" else 2):
        sent += 1
        # A new, fully written buffer each time: a leak would show in the RSS.
        await send({{"type": "http.response.body", "body": bytes([i % 251]) * CHUNK,
                    "more_body": True}})
    await send({{"type": "http.response.body", "body": b""}})

with serving(app, lifespan="off") as adapter:
    def run(path):
        global ahead
        received = total = 0
        iterable = adapter(make_environ(path=path), lambda *a: None)
        for chunk in iterable:
            received += 1
            total += len(chunk)
            ahead = max(ahead, sent - received)
            time.sleep(0.0005)  # a slow reader
        iterable.close()
        return total
    run("/warm-up")
    ahead = sent = 0
    before = peak()
    started = time.monotonic()
    size = run("/big")
    seconds = time.monotonic() - started
    print(json.dumps({{"growth": peak() - before, "size": size, "ahead": ahead,
                      "seconds": seconds}}))
"""


def _run(script: str) -> dict[str, Any]:
    source = _PRELUDE + script.format(total=GiB)
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run(
        [sys.executable, "-c", source],
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
        cwd=Path(__file__).resolve().parents[2],  # -c imports tests.support from here
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"peak RSS growth {result['growth'] / MiB:.1f} MiB in {result['seconds']:.1f}s")
    return result


@pytest.mark.timeout(120)
def test_1gib_upload_keeps_memory_flat() -> None:
    """A2W-RECV-01: a 1 GiB upload, read in chunks of at most 64 KiB exactly up to
    CONTENT_LENGTH, grows the peak RSS by less than 32 MiB."""
    result = _run(_UPLOAD)
    assert result["size"] == GiB
    assert result["pos"] == GiB
    assert result["max_read"] <= 65536
    assert result["largest"] <= 65536
    assert result["growth"] < 32 * MiB


@pytest.mark.timeout(120)
def test_1gib_streamed_response_to_slow_reader_keeps_memory_flat() -> None:
    """A2W-SEND-07: 1 GiB streamed in 1 MiB chunks to a slow reader grows the peak RSS
    by less than 32 MiB, and the app is never more than one chunk ahead of the reader."""
    result = _run(_DOWNLOAD)
    assert result["size"] == GiB
    assert result["ahead"] <= 1
    assert result["growth"] < 32 * MiB
