"""An MCP server inside a Flask app and inside a Django project, on a WSGI server
(issue 15 point 4): examples/mcp_in_flask and examples/django_migration/wsgi.py.

The MCP SDK's own client connects through gunicorn gthread (4 threads) and through
Apache mod_wsgi (daemon mode, as Apache's www-data; tests/live/hosts.py) and does what
``mcp_scenario`` describes, in both protocol eras: ``legacy`` (the 2025 handshake, a
stateful session with an ``Mcp-Session-Id``, a GET stream held open) and ``auto`` (the
2026 single-exchange protocol). The same scenario runs against the same routes served
natively by uvicorn (``asgi_app``: the MCP app with no bridge), and the two outcomes
must be equal. Besides, on every server:

- the slow tool's progress notifications arrive while it runs: the first one reaches
  the client before the tool returned (its ``finished_at``; timestamps, not sleeps);
- four calls in flight at once all ran on one event loop, under one lifespan: the MCP
  session manager entered by the lifespan serves every request of the process.

A WSGI server is a parameter (``WSGI_HOSTS``).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from werkzeug.test import Client as WSGIClient

from bridgeway import WSGIDispatcher
from tests.live.hosts import shared_directory
from tests.live.servers import (
    ASGI_SERVERS,
    BIN,
    HOST,
    ROOT,
    WSGI_SERVERS,
    ServerProcess,
    ServerSpec,
    running_server,
    running_servers,
    server_env,
)
from tests.live.servers import WSGI_HOSTS as HOSTS
from tests.support.mcp_scenario import (
    PAUSE,
    ExampleTools,
    Outcome,
    run_scenario,
    run_stateless_clients,
)


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "examples/django_migration/manage.py"), "migrate", "-v", "0"],
        env=server_env(env),
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )


@dataclass(frozen=True)
class Example:
    wsgi: str  # the WSGI entry point: the dispatcher, the MCP app through ASGIToWSGI
    asgi: str  # the same routes for an ASGI server: the MCP app natively
    tools: ExampleTools
    home: str  # a page of the host framework, proving it still serves the rest
    prepare: Callable[[dict[str, str]], None] | None = None


EXAMPLES = {
    "flask": Example(
        "examples.mcp_in_flask.app:application",
        "examples.mcp_in_flask.app:asgi_app",
        ExampleTools(add="add", list="list_todos", slow="review", slow_count="reviewed"),
        "/todos",
    ),
    "django": Example(
        "examples.django_migration.wsgi:application",
        "examples.django_migration.wsgi:asgi_app",
        ExampleTools(add="add_note", list="list_notes", slow="export_notes", slow_count="exported"),
        "/",
        migrate,
    ),
}

# The WSGI servers the MCP client goes through (each: one process, several threads).
WSGI_HOSTS: dict[str, ServerSpec] = {
    "gunicorn-gthread": WSGI_SERVERS["gunicorn-gthread"],
    "mod_wsgi": HOSTS["mod_wsgi"],  # daemon mode as www-data (tests/live/hosts.py)
}
NATIVE = ASGI_SERVERS["uvicorn-httptools"]
MODES = ["legacy", "auto"]  # the 2025 handshake (stateful session), the 2026 protocol


@pytest.fixture(scope="module", params=sorted(EXAMPLES))
def served(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Example, dict[str, ServerProcess]]]:
    """One example on every WSGI host and natively on uvicorn, started together."""
    example = EXAMPLES[request.param]
    # A directory Apache's www-data may write the database into (tmp_path is 0700).
    with shared_directory("mcp-django") as shared:
        db = shared / "db.sqlite3"
        env = {"DJANGO_EXAMPLE_DB": str(db)}
        if example.prepare is not None:
            example.prepare(env)
            db.chmod(0o666)
        launches = [(NATIVE, example.asgi)]
        launches += [(spec, example.wsgi) for spec in WSGI_HOSTS.values()]
        with running_servers(launches, env=env) as servers:
            yield example, {srv.spec.name: srv for srv in servers}


def check_outcome(outcome: Outcome, example: Example, server: str) -> None:
    """What must hold on any server (native included: the checks are sound there)."""
    tools = example.tools
    assert outcome.tools == sorted([tools.add, tools.list, tools.slow, "server_info"])
    assert len(outcome.progress) == 3, outcome.progress
    finished_at = float(outcome.slow_result["finished_at"])
    received = [p.received_at for p in outcome.progress]
    # Incremental: each notification reached the client while the tool was still
    # running (the tool returned PAUSE after sending the last one, 3 x PAUSE after the
    # first); a buffered stream would bring them with the result, after finished_at.
    assert received[0] < finished_at - 2 * PAUSE, (server, received, finished_at)
    assert all(at < finished_at for at in received), (server, received, finished_at)
    # One lifespan and one event loop served the four concurrent calls: the lifespan ran
    # (its state is what server_info reads) and its session manager served them all.
    assert len(outcome.infos) == 4
    assert {info["lifespans_started"] for info in outcome.infos} == {1}, outcome.infos
    assert len({info["event_loop"] for info in outcome.infos}) == 1, outcome.infos


@pytest.mark.servers
@pytest.mark.parametrize("host", sorted(WSGI_HOSTS))
@pytest.mark.parametrize("mode", MODES)
def test_mcp_client_through_the_wsgi_server_as_natively(
    served: tuple[Example, dict[str, ServerProcess]], host: str, mode: str
) -> None:
    example, servers = served
    bridged, native = servers[host], servers[NATIVE.name]
    # Items are tagged by run: the Django servers share their database.
    tag, native_tag = (f"{mode}-{uuid.uuid4().hex[:8]}" for _ in range(2))
    # Both at once (each in a thread of its own).
    with ThreadPoolExecutor(2) as pool:
        wsgi_run = pool.submit(run_scenario, bridged.url("/mcp"), example.tools, mode, tag)
        native_run = pool.submit(run_scenario, native.url("/mcp"), example.tools, mode, native_tag)
        through_wsgi, natively = wsgi_run.result(), native_run.result()
    check_outcome(natively, example, NATIVE.name)
    check_outcome(through_wsgi, example, host)
    assert through_wsgi.comparable(tag) == natively.comparable(native_tag)
    assert through_wsgi.protocol == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert through_wsgi.added == [f"{tag} {n}" for n in range(3)]
    assert through_wsgi.listed == through_wsgi.added
    assert through_wsgi.slow_result[example.tools.slow_count] == 3
    # The host framework still serves everything outside /mcp, and the items the MCP
    # tools added are its own data.
    page = httpx.get(bridged.url(example.home), timeout=10.0)
    assert page.status_code == 200
    assert tag in page.text


# gunicorn with several worker processes: only stateless MCP works there (a session
# lives in one process), as with uvicorn --workers. --preload: the app is imported once,
# before the fork (bridgeway makes its loop in each worker, on its first request).
STATELESS_WORKERS = ServerSpec(
    "gunicorn-gthread-2-workers",
    "wsgi",
    lambda app, port: [
        str(BIN / "gunicorn"), "-k", "gthread", "-w", "2", "--threads", "2", "--preload",
        "-b", f"{HOST}:{port}", app,
    ],
)  # fmt: skip


@pytest.mark.servers
def test_stateless_mcp_across_gunicorn_workers() -> None:
    """``MCP_STATELESS=1``: any worker may answer any request (which one does is the
    kernel's choice), the legacy client's included: there is no session to find. Each
    worker that answered ran the MCP lifespan once, and its calls ran on its one loop."""
    with running_server(
        STATELESS_WORKERS, EXAMPLES["flask"].wsgi, env={"MCP_STATELESS": "1"}
    ) as srv:
        for mode in MODES:
            infos = run_stateless_clients(srv.url("/mcp"), mode, clients=3, calls=3)
            assert len(infos) == 9
            assert {info["lifespans_started"] for info in infos} == {1}
            loops = {(info["pid"], info["event_loop"]) for info in infos}
            assert len(loops) == len({info["pid"] for info in infos})  # one loop per process


# --- in process: the lifespan is what makes the MCP app work ----------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.mark.parametrize("lifespan", ["auto", "off"])
def test_the_mcp_app_needs_its_lifespan(lifespan: str) -> None:
    """The streamable-HTTP app answers only once its lifespan entered the session
    manager (``session_manager.run()``): with ``lifespan="off"`` the SDK raises, which
    reaches the WSGI caller; with the lifespan, ``initialize`` is answered. Flask is
    served either way."""
    from examples.mcp_in_flask import app as example

    fresh = example.mcp.streamable_http_app(streamable_http_path="/")  # a new manager
    wsgi = WSGIDispatcher(
        {"/mcp": fresh},
        default=example.flask_app,
        asgi_options={"loop_mode": "shared", "lifespan": lifespan},
    )
    client = WSGIClient(wsgi)
    try:
        base = "http://127.0.0.1:8000"  # a Host the SDK's DNS-rebinding check accepts
        assert client.get("/todos", base_url=base, buffered=True).status_code == 200
        post = {"json": INITIALIZE, "headers": MCP_HEADERS, "base_url": base, "buffered": True}
        if lifespan == "off":
            with pytest.raises(RuntimeError, match="Task group is not initialized"):
                client.post("/mcp/", **post)
            return
        answer = client.post("/mcp/", **post)
        assert answer.status_code == 200
        assert answer.headers["Mcp-Session-Id"]
        data = [line for line in answer.text.splitlines() if line.startswith("data: ")]
        assert json.loads(data[0][len("data: ") :])["result"]["serverInfo"]["name"] == "todos"
    finally:
        wsgi.shutdown()


# --- stopping gunicorn while a stateful session is open ---------------------------------

GUNICORN_CONF = ServerSpec(
    "gunicorn-gthread-conf",
    "wsgi",
    lambda app, port: [
        str(BIN / "gunicorn"), "-c", str(ROOT / "examples/mcp_in_flask/gunicorn.conf.py"),
        "--threads", "4", "-b", f"{HOST}:{port}", app,
    ],
)  # fmt: skip


@pytest.mark.servers
def test_gunicorn_stops_promptly_with_a_session_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connected stateful client holds a GET stream. With the example's
    gunicorn.conf.py a SIGTERM ends it (as uvicorn does, through sse-starlette), so
    the worker exits at once, cleanly, after its MCP lifespan shutdown; without the
    hook gunicorn waits graceful_timeout (30 s) and the harness's SIGKILL (10 s) would
    come first."""
    # The SDK logs through rich, which wraps each message to the terminal's width (the
    # COLUMNS the test run inherits) beside its source location: one wide line each.
    monkeypatch.setenv("COLUMNS", "240")
    with running_server(GUNICORN_CONF, EXAMPLES["flask"].wsgi) as srv:
        connected, stopped = threading.Event(), threading.Event()
        client = threading.Thread(
            target=hold_session, args=(srv.url("/mcp"), connected, stopped), daemon=True
        )
        client.start()
        assert connected.wait(20.0), "the client did not connect"
        started = time.monotonic()
        code = srv.stop()
        took = time.monotonic() - started
        stopped.set()
        client.join(20.0)
        log = srv.log()
    assert code == 0, log
    assert took < 8.0, log
    assert "StreamableHTTP session manager shutting down" in log, log


def hold_session(url: str, connected: threading.Event, stopped: threading.Event) -> None:
    """A legacy (stateful) client that stays connected until ``stopped``; what the
    server's going away does to it is not the point."""
    import anyio
    from mcp import Client

    async def hold() -> None:
        with anyio.fail_after(40.0):
            async with Client(url, mode="legacy", read_timeout_seconds=30.0) as client:
                await client.list_tools()
                connected.set()
                await anyio.to_thread.run_sync(stopped.wait, 30.0)

    with contextlib.suppress(Exception):
        anyio.run(hold)
