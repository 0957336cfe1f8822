"""ASGIToWSGI under real WSGI servers, over real sockets (issue 3, points 2, 3, 6, 7, 9).

Each server is a subprocess on a free loopback port (``tests/live/servers.py``); the
ASGI apps are in ``tests/live/a2w_apps.py``. What happened inside the server process is
read from JSON answers and from marker files the apps write into a per-test directory
(``$BRIDGEWAY_MARKERS``), each holding the ``time.time()`` of its event.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.live.rawclient import RawConnection, exchange, request_bytes
from tests.live.servers import (
    BIN,
    HOST,
    WSGI_SERVERS,
    ServerProcess,
    ServerSpec,
    running_server,
)
from tests.support.fleet import running_fleet
from tests.support.waiting import wait_until

pytestmark = pytest.mark.servers

ECHO = "tests.live.a2w_apps:echo"
STATEFUL = "tests.live.a2w_apps:stateful"
FAILING = "tests.live.a2w_apps:failing"
TICKER = "tests.live.a2w_apps:ticker"

# Leftovers that mean a loop-bound object crossed loops or a task was abandoned.
BAD_LOG_LINES = (
    "attached to a different loop",
    "bound to a different event loop",
    "Event loop is closed",
    "Task was destroyed but it is pending",
    "was never awaited",
    "Traceback",
)


def _spec(name: str, template: str) -> ServerSpec:
    """A WSGI server setup the shared table does not have (same placeholders)."""
    words = template.split()

    def argv(app: str, port: int) -> list[str]:
        return [w.format(app=app, port=port, bin=str(BIN), host=HOST) for w in words]

    return ServerSpec(name, "wsgi", argv)


GTHREAD = WSGI_SERVERS["gunicorn-gthread"]  # -w 1 --threads 4
GTHREAD_PRELOAD = _spec(
    "gunicorn-gthread-preload",
    "{bin}/gunicorn --preload -w 2 -k gthread --threads 4 -b {host}:{port} {app}",
)
GTHREAD_RECYCLING = _spec(
    "gunicorn-gthread-max-requests",
    "{bin}/gunicorn -w 1 -k gthread --threads 4 --max-requests 10 -b {host}:{port} {app}",
)
# One worker thread: "the next request on the same worker" leaves no other thread to use.
WAITRESS_1 = _spec(
    "waitress-1-thread", "{bin}/waitress-serve --threads=1 --listen={host}:{port} {app}"
)


# --- helpers ----------------------------------------------------------------------------


def get(port: int, target: str, timeout: float = 10.0) -> Any:
    response = exchange(port, request_bytes("GET", target), timeout=timeout)
    assert response.status == 200, response
    return json.loads(response.body)


def marker_time(path: Path) -> float:
    return float(path.read_text().splitlines()[0])


def loop_markers(folder: Path, kind: str) -> set[tuple[int, int]]:
    """``(pid, id(loop))`` of every ``startup-*`` or ``shutdown-*`` marker."""
    found = set()
    for path in folder.glob(f"{kind}-*"):
        _, pid, loop = path.name.split("-")
        found.add((int(pid), int(loop)))
    return found


def assert_clean_log(server: ServerProcess) -> None:
    log = server.log()
    for bad in BAD_LOG_LINES:
        assert bad not in log, f"{bad!r} in the server log:\n{log}"


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    folder = tmp_path / "markers"
    folder.mkdir()
    return folder


def marker_env(folder: Path, **extra: str) -> dict[str, str]:
    return {"BRIDGEWAY_MARKERS": str(folder), **extra}


# --- smoke: the echo-scope probe on every WSGI server -------------------------------------

SMOKE_SERVERS = [
    "gunicorn-sync",
    "gunicorn-gthread",
    "waitress",
    "werkzeug",
    "wsgiref",
    "cheroot",
    "uwsgi",
]


@pytest.fixture(scope="module")
def wsgi_fleet() -> Iterator[dict[str, ServerProcess]]:
    """Every WSGI server serving ASGIToWSGI(echo_app), started in parallel."""
    launches = [(WSGI_SERVERS[name], ECHO) for name in SMOKE_SERVERS]
    with running_fleet(launches) as fleet:
        yield fleet


@pytest.mark.parametrize("server_name", SMOKE_SERVERS)
def test_echo_scope_path_query_and_body(
    wsgi_fleet: dict[str, ServerProcess], server_name: str
) -> None:
    port = wsgi_fleet[server_name].port
    scope = get(port, "/caf%C3%A9?q=1")
    assert scope["method"] == "GET"
    assert scope["path"] == "/café"
    assert scope["query_string"] == "q=1"
    assert scope["root_path"] == ""
    assert scope["scheme"] == "http"
    assert scope["http_version"] == "1.1"
    assert scope["raw_path"] == "/caf%C3%A9"
    assert scope["has_state"] is True  # the probe supports lifespan
    assert ["host", "localhost"] in scope["headers"]

    body = bytes(range(256)) * 1000 + b"end"  # several chunk_size reads on some servers
    response = exchange(
        port,
        request_bytes("POST", "/upload", [("Content-Type", "application/octet-stream")], body),
        timeout=10.0,
    )
    assert response.status == 200, response
    echoed = json.loads(response.body)
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/upload"
    assert echoed["sha256"] == hashlib.sha256(body).hexdigest()
    assert echoed["length"] == len(body)
    assert ["content-type", "application/octet-stream"] in echoed["headers"]
    assert ["content-length", str(len(body))] in echoed["headers"]


# --- point 2: loops pooled per process; fork-safe ---------------------------------------


def test_werkzeug_thread_per_request_reuses_a_handful_of_loops() -> None:
    with running_server("werkzeug", ECHO) as server:
        process = psutil.Process(server.pid)
        for i in range(1000):
            # A new connection each time: werkzeug runs every one in a new thread.
            assert get(server.port, f"/r?i={i}")["query_string"] == f"i={i}"
            if i == 99:
                threads, fds = process.num_threads(), process.num_fds()
        info = get(server.port, "/info")
        # No thread or fd leaks per request (A2W-LIFE-02); a little slack for the
        # thread that is serving /info and its socket.
        assert process.num_threads() <= threads + 2
        assert process.num_fds() <= fds + 4
    assert 1 <= info["loops_created"] <= 4, info
    assert info["startups"] == info["loops_created"]  # one lifespan per loop


def test_gunicorn_preload_two_gthread_workers_serve_200_concurrent(markers: Path) -> None:
    with running_server(GTHREAD_PRELOAD, ECHO, env=marker_env(markers)) as server:
        master = server.pid

        def one(i: int) -> int:
            scope = get(server.port, f"/n/{i}?i={i}")
            assert (scope["path"], scope["query_string"]) == (f"/n/{i}", f"i={i}")
            return int(scope["pid"])

        with ThreadPoolExecutor(max_workers=40) as pool:
            pids = list(pool.map(one, range(200)))
        workers = {child.pid for child in psutil.Process(master).children()}
        assert_clean_log(server)

    assert len(pids) == 200
    assert set(pids) <= workers
    startups = loop_markers(markers, "startup")
    startup_pids = {pid for pid, _ in startups}
    assert master not in startup_pids  # lifespan never ran in the pre-fork master
    assert startup_pids <= workers
    for pid in startup_pids:  # at most one loop per worker thread
        assert sum(1 for p, _ in startups if p == pid) <= 4


# --- point 3: lifespan per loop, state, failure, shutdown --------------------------------


class _Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: httpx pools connections on its loop
    disable_nagle_algorithm = True  # head and body are two writes: no 40 ms delayed ACK

    def do_GET(self) -> None:
        body = b'{"pong": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    """A tiny loopback HTTP server for the apps' httpx.AsyncClient to call."""
    httpd = http.server.ThreadingHTTPServer((HOST, 0), _Upstream)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://{HOST}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5.0)


def test_lock_and_httpx_client_from_lifespan_4_threads_x_200(markers: Path, upstream: str) -> None:
    env = marker_env(markers, BRIDGEWAY_UPSTREAM=upstream)
    with running_server(GTHREAD, STATEFUL, env=env) as server:

        def client(n: int) -> list[dict[str, Any]]:
            return [get(server.port, "/use") for _ in range(n)]

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = [r for rs in pool.map(client, [200] * 4) for r in rs]
        assert_clean_log(server)

    assert len(results) == 800
    assert all(r["ok"] for r in results)
    # Each request used the lock and client made on its own loop (A2W-LIFE-03) ...
    assert all(r["loop"] == r["state_loop"] for r in results)
    # ... and every loop had finished its lifespan startup first (A2W-LIFE-01).
    startups = loop_markers(markers, "startup")
    assert {(r["pid"], r["loop"]) for r in results} <= startups
    assert 1 <= len(startups) <= 4


def test_lifespan_startup_failure_gives_500_and_skips_the_handler(markers: Path) -> None:
    with running_server(GTHREAD, FAILING, env=marker_env(markers)) as server:

        def one(_: int) -> int:
            return exchange(server.port, request_bytes("GET", "/"), timeout=10.0).status

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(one, range(40)))
        log = server.log()

    assert set(statuses) == {500}
    assert not list(markers.glob("handler-*")), "the HTTP handler ran after startup failed"
    assert "db down" in log
    failures = log.count("lifespan startup failed on this event loop")
    assert 1 <= failures <= 4, log  # once per loop, not once per request
    assert log.count("RuntimeError: db down") == failures, log  # and only once per loop


def test_shutdown_runs_for_every_loop_on_sigterm(markers: Path) -> None:
    spec = _spec(
        "gunicorn-gthread-2x4", "{bin}/gunicorn -w 2 -k gthread --threads 4 -b {host}:{port} {app}"
    )
    with running_server(spec, STATEFUL, env=marker_env(markers)) as server:
        # Held requests overlap, so the workers open several loops each.
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda _: get(server.port, "/use?hold=0.1"), range(48)))
        assert all(r["ok"] for r in results)
        assert server.stop() == 0  # SIGTERM: graceful exit of master and workers
        assert_clean_log(server)

    startups = loop_markers(markers, "startup")
    assert len(startups) >= 2
    assert loop_markers(markers, "shutdown") == startups


def test_shutdown_runs_when_max_requests_recycles_the_worker(markers: Path) -> None:
    with running_server(GTHREAD_RECYCLING, STATEFUL, env=marker_env(markers)) as server:
        pids = [get(server.port, "/use")["pid"] for _ in range(25)]
        assert len(set(pids)) >= 2, "the worker was not recycled"
        current = pids[-1]

        def recycled_loops_shut_down() -> bool:
            retired = {s for s in loop_markers(markers, "startup") if s[0] != current}
            return retired <= loop_markers(markers, "shutdown")

        # The recycled workers exited while the server kept running.
        wait_until(recycled_loops_shut_down, 10.0, "shutdown markers of recycled workers")
        retired_pids = {p for p, _ in loop_markers(markers, "startup")} - {current}
        assert retired_pids == set(pids) - {current}
        assert server.stop() == 0
        assert_clean_log(server)

    assert loop_markers(markers, "shutdown") == loop_markers(markers, "startup")


# --- point 6: a server-sent-events client that leaves is noticed within 1 s --------------


@pytest.mark.parametrize("server_name", ["gunicorn-gthread", "waitress"])
@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_sse_notices_a_client_that_left(markers: Path, server_name: str, reset: bool) -> None:
    with running_server(server_name, ECHO, env=marker_env(markers)) as server:
        conn = RawConnection(server.port, timeout=5.0)
        try:
            conn.send(request_bytes("GET", "/sse?id=one"))
            head, parser = conn.read_head()
            assert head.status == 200
            assert head.header("content-type") == "text/event-stream"
            conn.read_body(head, parser, limit=60)  # a few events, 100 ms apart
            assert b"data: tick 0\n\n" in head.body
        finally:
            left = time.time()
            conn.close(reset=reset)
        found = markers / "sse-one"
        wait_until(found.exists, 5.0, "the SSE app to notice the disconnect")
        noticed = marker_time(found) - left
        assert noticed < 1.0, f"noticed after {noticed:.2f}s ({found.read_text()!r})"
        # The worker is free and the server unharmed.
        assert get(server.port, "/after")["path"] == "/after"


# --- point 7: work after the response neither delays the client nor holds the worker ----


@pytest.mark.parametrize(
    "spec",
    [WAITRESS_1, WSGI_SERVERS["gunicorn-sync"], WSGI_SERVERS["werkzeug"]],
    ids=lambda spec: str(spec.name),
)
def test_background_work_after_the_response(markers: Path, spec: ServerSpec) -> None:
    with running_server(spec, STATEFUL, env=marker_env(markers)) as server:
        started = time.time()
        response = exchange(server.port, request_bytes("GET", "/bg?id=work"), timeout=10.0)
        answered = time.time() - started
        assert (response.status, response.body) == (200, b"queued")
        assert answered < 0.5

        before = time.monotonic()
        assert get(server.port, "/")["pid"] > 0  # the same (only) worker, free at once
        assert time.monotonic() - before < 0.5
        assert not (markers / "bg-work").exists()

        found = markers / "bg-work"
        wait_until(found.exists, 10.0, "the background task's marker")
        assert 2.8 <= marker_time(found) - started < 5.0
        assert_clean_log(server)


# --- point 9: loop_mode="thread" keeps tasks running between requests --------------------


def test_thread_loop_mode_keeps_a_lifespan_ticker_running() -> None:
    with running_server(GTHREAD, TICKER) as server:
        first = {mode: get(server.port, f"/{mode}") for mode in ("thread", "inline")}
        time.sleep(2.0)  # the interval under test (nothing is being waited for)
        second = {mode: get(server.port, f"/{mode}") for mode in ("thread", "inline")}
        assert_clean_log(server)

    for mode in ("thread", "inline"):
        assert first[mode]["loop"] == second[mode]["loop"], mode
    assert second["thread"]["ticks"] - first["thread"]["ticks"] >= 15
    # The documented trade-off of the default mode: the loop sleeps between requests.
    assert second["inline"]["ticks"] - first["inline"]["ticks"] <= 3
