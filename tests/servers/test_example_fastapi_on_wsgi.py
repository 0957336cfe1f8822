"""examples/fastapi_on_wsgi: a FastAPI app on gunicorn (gthread), waitress, uWSGI, Apache
mod_wsgi and Phusion Passenger: the "FastAPI on a WSGI-only host" journey.

Each server serves the example with its own database file; the same tests run on each.
Every entry file is served as it is: mod_wsgi-express serves ``fastapi_on_wsgi.wsgi``
(daemon mode, main interpreter, as Apache's user), Passenger Standalone serves the
example's directory through its ``passenger_wsgi.py`` (two processes, one request at a
time each), waitress serves ``passenger_wsgi.py`` too and uWSGI
``pythonanywhere_wsgi.py``.
"""

from __future__ import annotations

import hashlib
import runpy
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridgeway import ASGIToWSGI
from examples.fastapi_on_wsgi import app as example
from tests.live.hosts import shared_directory
from tests.live.servers import BIN, HOST, WSGI_HOSTS, ServerProcess, ServerSpec, running_server

EXAMPLE = Path(example.__file__).parent

# gunicorn with the example's config file (gthread, and a worker_exit hook that runs the
# lifespan shutdown); the port, one worker and the app come from the command line.
GUNICORN = ServerSpec(
    "gunicorn-gthread",
    "wsgi",
    lambda app, port: [
        str(BIN / "gunicorn"),
        "-c",
        str(EXAMPLE / "gunicorn.conf.py"),
        "-w",
        "1",
        "--threads",
        "4",
        "-b",
        f"{HOST}:{port}",
        app,
    ],
)
SERVED: dict[str, tuple[ServerSpec | str, str]] = {
    "gunicorn-gthread": (GUNICORN, "examples.fastapi_on_wsgi.app:application"),
    "waitress": ("waitress", "examples.fastapi_on_wsgi.passenger_wsgi:application"),
    # PythonAnywhere's file: its PROJECT_DIR does not exist here, the harness's
    # --pythonpath makes the repository importable instead.
    "uwsgi": ("uwsgi", "examples.fastapi_on_wsgi.pythonanywhere_wsgi:application"),
    # The entry files themselves: a .wsgi script, a directory with passenger_wsgi.py.
    "mod_wsgi": (WSGI_HOSTS["mod_wsgi"], "examples/fastapi_on_wsgi/fastapi_on_wsgi.wsgi"),
    "passenger": (WSGI_HOSTS["passenger"], "examples/fastapi_on_wsgi"),
}


@pytest.fixture(scope="module", params=sorted(SERVED))
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    name: str = request.param
    spec, app = SERVED[name]
    # A directory Apache's user (www-data) may write the database into.
    with shared_directory(f"fastapi-{name}") as folder:
        env = {"FASTAPI_EXAMPLE_DB": str(folder / "notes.sqlite3")}
        with running_server(spec, app, env=env) as srv:
            yield srv


@pytest.mark.servers
def test_lifespan_resource_in_state(client: httpx.Client) -> None:
    info = client.get("/").json()
    assert info["app"] == "FastAPI"
    # The lifespan ran (once per event loop) and its connection is in request.state.
    assert info["lifespans_started"] >= 1
    assert 1 <= info["loop"] <= info["lifespans_started"]
    created = client.post("/notes", json={"title": "first", "body": "from a WSGI server"})
    assert created.status_code == 201
    note = created.json()
    assert note["title"] == "first"
    assert note in client.get("/notes").json()


@pytest.mark.servers
def test_sync_endpoint(client: httpx.Client) -> None:
    digest = b"abc"
    for _ in range(5):
        digest = hashlib.sha256(digest).digest()
    answer = client.get("/sync/sha256", params={"text": "abc", "rounds": 5}).json()
    assert answer["sha256"] == digest.hex()
    # A plain `def` endpoint runs in FastAPI's thread pool, not in the server's thread.
    assert answer["thread"].startswith("AnyIO worker thread")


@pytest.mark.servers
def test_request_validation_errors(client: httpx.Client) -> None:
    bad_body = client.post("/notes", json={"title": "", "body": 3})
    assert bad_body.status_code == 422
    assert [(e["loc"], e["type"]) for e in bad_body.json()["detail"]] == [
        (["body", "title"], "string_too_short"),
        (["body", "body"], "string_type"),
    ]
    bad_query = client.get("/sync/sha256", params={"text": "x", "rounds": 0})
    assert bad_query.status_code == 422
    assert bad_query.json()["detail"][0]["loc"] == ["query", "rounds"]
    assert (
        client.post(
            "/notes", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


@pytest.mark.servers
def test_streaming_response_arrives_line_by_line(client: httpx.Client) -> None:
    with client.stream("GET", "/stream", params={"lines": 4, "delay": 0.3}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        received: list[tuple[float, str]] = []
        for line in response.iter_lines():
            received.append((time.time(), line))
    assert [line.split(" at ")[0] for _, line in received] == [f"line {n}" for n in range(4)]
    first_received = received[0][0]
    last_produced = float(received[-1][1].split(" at ")[1])
    assert first_received < last_produced, "the first line only came with the last"


@pytest.mark.servers
def test_background_task_runs_after_the_response(client: httpx.Client) -> None:
    started = time.monotonic()
    created = client.post("/notes", json={"title": "audited"})
    answered_in = time.monotonic() - started
    assert created.status_code == 201
    # The task sleeps AUDIT_DELAY before writing: the response did not wait for it.
    assert answered_in < example.AUDIT_DELAY
    note_id = created.json()["id"]
    assert client.get(f"/notes/{note_id}/audit").json()["audit"] == []
    deadline = time.monotonic() + 10.0
    while not (audit := client.get(f"/notes/{note_id}/audit").json()["audit"]):
        assert time.monotonic() < deadline, "the background task never wrote its audit row"
        time.sleep(0.05)
    assert len(audit) == 1


@pytest.mark.parametrize(
    "entry", ["passenger_wsgi.py", "pythonanywhere_wsgi.py", "fastapi_on_wsgi.wsgi"]
)
def test_entry_files_define_application(entry: str) -> None:
    namespace = runpy.run_path(str(EXAMPLE / entry))
    application = namespace["application"]
    assert isinstance(application, ASGIToWSGI)
    assert application.app is example.app


@pytest.mark.servers
def test_gunicorn_worker_exits_cleanly(tmp_path: Path) -> None:
    """SIGTERM: the worker_exit hook closes every loop's database; gunicorn exits with 0."""
    env = {"FASTAPI_EXAMPLE_DB": str(tmp_path / "notes.sqlite3")}
    with running_server(GUNICORN, SERVED["gunicorn-gthread"][1], env=env) as srv:
        assert httpx.post(srv.url("/notes"), json={"title": "x"}, timeout=10).status_code == 201
        started = time.monotonic()
        assert srv.stop() == 0
        assert time.monotonic() - started < 8.0  # (the harness would SIGKILL at 10 s)
        assert "Worker exiting" in srv.log()
