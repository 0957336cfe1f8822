"""Issue 13, the lifecycle side of ASGIToWSGI against the native stack, on real servers.

Point 2: a client that leaves an SSE stream has the stream's ``finally`` run within 1 s
on every WSGI server the conformance suite runs, as under uvicorn natively, for both of
Starlette's disconnect strategies (spec_version 2.3 and 2.4), FastAPI's
``StreamingResponse`` and a raw ASGI stream; and nothing of the request is left on the
loop. Apps: ``tests/live/lifecycle_apps.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live.hosts import shared_directory
from tests.live.rawclient import RawConnection, exchange, request_bytes
from tests.live.servers import SERVERS, WSGI_HOSTS, WSGI_SERVERS, ServerProcess, running_servers
from tests.support.fleet import running_fleet

pytestmark = pytest.mark.servers

SSE = "tests.live.lifecycle_apps:sse"
SSE_NATIVE = "tests.live.lifecycle_apps:sse_app"
NATIVE = "uvicorn-h11"
# Every WSGI server of the conformance suite (its SERVERS is the same table), and uvicorn
# as the native reference.
SSE_SERVERS = [NATIVE, *WSGI_SERVERS, *WSGI_HOSTS]
STREAMS = {
    "starlette-2.4": "/sse?spec=2.4",
    "starlette-2.3": "/sse?spec=2.3",
    "fastapi": "/sse",  # whatever spec_version the server (or bridgeway) advertises
    "raw-asgi": "/raw",
}


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)  # polling interval, bounded by the deadline


@pytest.fixture(scope="module")
def sse_markers() -> Iterator[Path]:
    # Not tmp_path (0700): mod_wsgi's daemons write markers as www-data.
    with shared_directory("sse-markers") as path:
        yield path


@pytest.fixture(scope="module")
def sse_fleet(sse_markers: Path) -> Iterator[dict[str, ServerProcess]]:
    launches = [(SERVERS[name], SSE_NATIVE if name == NATIVE else SSE) for name in SSE_SERVERS]
    env = {"BRIDGEWAY_MARKERS": str(sse_markers)}
    with running_fleet(launches, env=env, ready_path="/leftovers") as fleet:
        yield fleet


def leftovers(port: int) -> dict[str, int]:
    response = exchange(port, request_bytes("GET", "/leftovers"), timeout=10.0)
    assert response.status == 200, response
    result: dict[str, int] = json.loads(response.body)
    return result


@pytest.mark.parametrize("stream", list(STREAMS))
@pytest.mark.parametrize("server_name", SSE_SERVERS)
def test_sse_stream_is_ended_when_the_client_leaves(
    sse_fleet: dict[str, ServerProcess], sse_markers: Path, server_name: str, stream: str
) -> None:
    server = sse_fleet[server_name]
    name = f"{server_name}-{stream}"
    target = STREAMS[stream] + ("&" if "?" in STREAMS[stream] else "?") + f"id={name}"
    conn = RawConnection(server.port, timeout=5.0)
    try:
        conn.send(request_bytes("GET", target))
        head, parser = conn.read_head()
        assert head.status == 200
        conn.read_body(head, parser, limit=60)  # a few events, 50 ms apart
        assert b"data: tick 0\n\n" in head.body
    finally:
        left = time.time()
        conn.close()
    found = sse_markers / f"sse-{name}"
    wait_for(found.exists, 5.0, f"the stream's finally under {server_name}")
    ended = float(found.read_text().splitlines()[0]) - left
    assert ended < 1.0, f"the stream's finally ran {ended:.2f}s after the client left"
    # Nothing of the request is left: its task finished, its generator was finalized.
    wait_for(
        lambda: leftovers(server.port) == {"generators": 0, "tasks": 0},
        5.0,
        f"no leftovers under {server_name} (last: {leftovers(server.port)})",
    )
    log = server.log()
    for bad in ("Task was destroyed but it is pending", "was never awaited"):
        assert bad not in log, log


# --- point 7: raw_path under cheroot, as uvicorn gives it --------------------------------


def test_raw_path_with_an_encoded_slash_under_cheroot_matches_uvicorn() -> None:
    launches = [
        (SERVERS["uvicorn-h11"], "tests.live.a2w_apps:echo_app"),
        (SERVERS["cheroot"], "tests.live.a2w_apps:echo"),
    ]
    seen = {}
    with running_servers(launches) as servers:
        for server in servers:
            response = exchange(server.port, request_bytes("GET", "/a%2Fb%20c?x=1"))
            assert response.status == 200, response
            echoed = json.loads(response.body)
            seen[server.spec.name] = (echoed["raw_path"], echoed["path"])
    assert seen["cheroot"][0] == seen["uvicorn-h11"][0] == "/a%2Fb%20c"
