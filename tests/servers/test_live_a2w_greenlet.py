"""ASGIToWSGI under greenlet servers (issue 15 point 2): gunicorn ``-k gevent``, gunicorn
``-k eventlet`` (25.3, the last with that worker: see ``live.servers``) and uWSGI
``--gevent``, each with one worker, serving ``tests/live/greenlet_apps.py``.

One test per server, in steps, on one server process: overlapping requests all succeed
and overlap; each adapter's lifespan starts once (on the worker's one loop); a client
that leaves a stream is noticed; a 2,000-request storm (some clients leaving) leaves no
greenlet, thread, loop, task or async generator behind; SIGTERM runs every lifespan
shutdown.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.live.rawclient import RawConnection, exchange, request_bytes
from tests.live.servers import GREENLET_SERVERS, GUNICORN_EVENTLET, running_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.servers

APP = "tests.live.greenlet_apps:app"
STORM = 2000
# Failures the bug of issue 15 left in the log, and leftovers of abandoned loops or tasks.
BAD_LOG_LINES = (
    "Cannot run the event loop while another loop is running",
    "Task was destroyed but it is pending",
    "was never awaited",
    "greenlet is being finalized",
    "Exception ignored",
    "Event loop is closed",
    "answered 500",
    "Error handling request",
)


def get(port: int, target: str, timeout: float = 10.0) -> Any:
    response = exchange(port, request_bytes("GET", target), timeout=timeout)
    assert response.status == 200, response
    return json.loads(response.body)


def lifespan_markers(folder: Path, kind: str) -> set[tuple[str, int, int]]:
    """``(adapter, pid, id(loop))`` of every ``startup-*`` or ``shutdown-*`` marker."""
    found = set()
    for path in folder.glob(f"{kind}-*"):
        _, name, pid, loop = path.name.split("-")
        found.add((name, int(pid), int(loop)))
    return found


# --- the steps ---------------------------------------------------------------------------


def overlapping_sleeps(port: int) -> None:
    """10 requests that each await asyncio.sleep(1) run at the same time."""
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: get(port, "/api/sleep"), range(10)))
    took = time.monotonic() - began
    assert took < 3.0, f"10 x 1 s took {took:.2f}s: the requests did not overlap"
    assert max(a["start"] for a in answers) < min(a["end"] for a in answers), answers
    assert len({a["pid"] for a in answers}) == 1  # one worker served them all


def stream_disconnect(port: int, markers: Path, name: str) -> None:
    """A client that leaves a stream: the generator's ``finally`` runs within 1 s."""
    conn = RawConnection(port, timeout=5.0)
    try:
        conn.send(request_bytes("GET", f"/api/stream?id={name}"))
        head, parser = conn.read_head()
        assert head.status == 200
        conn.read_body(head, parser, limit=40)
        assert b"chunk 0\n" in head.body
    finally:
        left = time.time()
        conn.close()
    found = markers / f"stream-{name}"
    wait_until(found.exists, 5.0, f"the stream's finally ({name})")
    noticed = float(found.read_text().splitlines()[0]) - left
    assert noticed < 1.0, f"the stream's finally ran {noticed:.2f}s after the client left"


def storm_request(port: int, i: int, rng: random.Random) -> str:
    """One request of the storm; returns its kind. Some clients leave early."""
    kind = rng.choices(
        ["hello", "raw", "upload", "stream-left", "upload-left"],
        weights=[55, 15, 15, 10, 5],
    )[0]
    if kind == "hello":
        assert get(port, "/api/hello") == {"hello": "world"}
    elif kind == "raw":
        assert get(port, "/raw/x")["path"] == "/raw/x"
    elif kind == "upload":
        body = rng.randbytes(rng.randint(1, 200_000))
        response = exchange(port, request_bytes("POST", "/api/upload", body=body))
        assert response.status == 200, response
        expected = {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        assert json.loads(response.body) == expected
    elif kind == "stream-left":
        with RawConnection(port, timeout=5.0) as conn:
            conn.send(request_bytes("GET", f"/api/stream?id=storm{i}"))
            head, parser = conn.read_head()
            assert head.status == 200
            conn.read_body(head, parser, limit=10)
    else:  # an upload cut halfway: the body reader meets the end of the connection
        with RawConnection(port, timeout=5.0) as conn:
            conn.send(request_bytes("POST", "/raw/upload", [("Content-Length", "100000")]))
            conn.send(b"x" * 1000)
    return kind


def storm(port: int, markers: Path) -> dict[str, int]:
    rng = random.Random(15)
    seeds = [rng.randrange(2**32) for _ in range(STORM)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        kinds = list(
            pool.map(lambda i: storm_request(port, i, random.Random(seeds[i])), range(STORM))
        )
    counts = {kind: kinds.count(kind) for kind in set(kinds)}
    left = {f"stream-storm{i}" for i, kind in enumerate(kinds) if kind == "stream-left"}
    wait_until(
        lambda: left <= {p.name for p in markers.glob("stream-storm*")},
        10.0,
        "the finally of every stream whose client left",
    )
    return counts


def test_asgi_app_under_a_greenlet_server(markers: Path, server_name: str) -> None:
    env = {"BRIDGEWAY_MARKERS": str(markers)}
    spec = GREENLET_SERVERS[server_name]
    with running_server(spec, APP, env=env, ready_path="/api/hello") as server:
        port = server.port
        overlapping_sleeps(port)
        # A loop of its own while ours waits (two at once cannot work under greenlets,
        # with or without bridgeway: asyncio has one running-loop slot per OS thread).
        assert get(port, "/sync")["ran"] > 0
        stream_disconnect(port, markers, "one")
        assert get(port, "/raw/x")["path"] == "/raw/x"  # the second adapter (thread mode)

        before = get(port, "/api/diag")
        assert before["loops_created"] == 2  # one per adapter, both on one loop
        assert before["open_loops"] == 1
        counts = storm(port, markers)
        assert all(counts.get(kind, 0) > 20 for kind in ("stream-left", "upload-left")), counts

        def settled() -> bool:
            now = get(port, "/api/diag")
            return all(now[key] <= before[key] for key in before if key != "pid")

        try:
            wait_until(settled, 10.0, "the worker to be back where it was before the storm")
        finally:
            print("diag before/after the storm:", before, get(port, "/api/diag"))
        overlapping_sleeps(port)  # and it still serves concurrently
        pid = before["pid"]
        code = server.stop()  # SIGTERM: the worker exits, its lifespans shut down
        # Only gunicorn 27's exit code says something about the worker: uWSGI's master
        # reports its own way of ending workers, and gunicorn 25.3's master under
        # Python 3.13 times out joining its control-server thread (a green thread
        # there, as the master imports eventlet) and exits 1 after the worker is gone.
        assert code == 0 or server_name != "gunicorn-gevent", (code, server.log())
        log = server.log()
    for bad in BAD_LOG_LINES:
        assert bad not in log, f"{bad!r} in the server log:\n{log}"
    startups = lifespan_markers(markers, "startup")
    assert len(startups) == 2, startups  # once per adapter, on the worker's one loop
    assert {(pid, loop) for _, pid, loop in startups} == {(pid, next(iter(startups))[2])}
    assert lifespan_markers(markers, "shutdown") == startups


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    folder = tmp_path / "markers"
    folder.mkdir()
    return folder


@pytest.fixture(params=list(GREENLET_SERVERS))
def server_name(request: pytest.FixtureRequest) -> str:
    name = str(request.param)
    if name == "gunicorn-eventlet":
        assert GUNICORN_EVENTLET.is_dir(), (
            f"{GUNICORN_EVENTLET} is missing: scripts/_venv.sh installs it (ensure_venv test)"
        )
    return name
