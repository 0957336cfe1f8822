"""examples/django_migration: Django through WSGIToASGI plus FastAPI under /api, on uvicorn.

The setup migrates a fresh SQLite file and creates a superuser with manage.py, as a
person deploying the project would, then serves ``examples.django_migration.asgi:app``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.live.servers import ROOT, ServerProcess, running_server, server_env

pytestmark = pytest.mark.servers

APP = "examples.django_migration.asgi:app"
MANAGE = ROOT / "examples" / "django_migration" / "manage.py"
PASSWORD = "correct horse battery staple"


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=server_env(env),
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )


# uvicorn's default HTTP implementation (httptools) and h11, which refuses header values
# with surrounding whitespace (Django's Set-Cookie values start with a space).
@pytest.fixture(scope="module", params=["uvicorn-httptools", "uvicorn-h11"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    database: Path = tmp_path_factory.mktemp("django") / "db.sqlite3"
    env = {"DJANGO_EXAMPLE_DB": str(database), "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
    manage("migrate", "--verbosity", "0", env=env)
    manage("createsuperuser", "--noinput", "--username", "admin", "--email", "a@b.test", env=env)
    with running_server(request.param, APP, env=env, ready_path="/api/health") as srv:
        yield srv


def test_fastapi_and_django_halves_share_the_database(client: httpx.Client) -> None:
    assert client.get("/api/health").json() == {"served_by": "FastAPI"}
    created = client.post("/api/notes", json={"title": "Moved to FastAPI", "body": "hi"})
    assert created.status_code == 201
    note_id = created.json()["id"]
    assert client.get(f"/api/notes/{note_id}").json()["title"] == "Moved to FastAPI"
    assert client.post("/api/notes", json={"title": ""}).status_code == 422
    assert client.get("/api/notes/999999").json() == {"detail": "no such note"}
    # Everything outside /api is still Django, reading the same table.
    page = client.get("/")
    assert page.status_code == 200
    assert "<h1>Notes, served by Django</h1>" in page.text
    assert f'<a href="/notes/{note_id}/">Moved to FastAPI</a>' in page.text
    detail = client.get(f"/notes/{note_id}/")
    assert "<h1>Moved to FastAPI</h1>" in detail.text
    assert client.get("/notes/999999/").status_code == 404  # Django's own 404


def test_admin_login(client: httpx.Client) -> None:
    login = client.get("/admin/login/", params={"next": "/admin/"})
    assert login.status_code == 200
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
    assert match is not None
    answer = client.post(
        "/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": match.group(1),
            "username": "admin",
            "password": PASSWORD,
            "next": "/admin/",
        },
    )
    assert (answer.status_code, answer.headers["location"]) == (302, "/admin/")
    assert "sessionid" in client.cookies
    home = client.get("/admin/")
    assert home.status_code == 200
    assert "Site administration" in home.text
    notes = client.get("/admin/notes/note/")
    assert notes.status_code == 200
    assert "Select note to change" in notes.text
    # Without the session cookie, the admin sends you to the login page.
    with httpx.Client(base_url=client.base_url, timeout=10.0) as anonymous:
        assert anonymous.get("/admin/").headers["location"] == "/admin/login/?next=/admin/"


def settled_report(client: httpx.Client) -> dict[str, int]:
    """The connection report once every earlier Django request has finished.

    A response's ``close()`` (which sends ``request_finished`` and closes the connection)
    runs in the worker thread just after the last chunk went out, so the client may
    already be asking again; a request that leaked would never settle.
    """
    deadline = time.monotonic() + 5.0
    while True:
        report: dict[str, int] = client.get("/debug/connections/").json()
        settled = report["started"] - report["finished"] == 1  # all but this report
        if (settled and report["open_database_files"] == 0) or time.monotonic() > deadline:
            return report
        time.sleep(0.05)  # polling interval, bounded by the deadline


def test_database_connections_closed_after_each_request(client: httpx.Client) -> None:
    before = settled_report(client)
    client.post("/api/notes", json={"title": "one more"})
    paths = ["/", "/export.csv", "/api/notes", "/notes/1/"] * 50  # 200 requests, most use the DB

    def fetch(path: str) -> int:
        return client.get(path).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(fetch, paths))
    assert statuses == [200] * len(paths)
    after = settled_report(client)
    # No thread of the process holds the database file open: every Django request closed
    # its connection when its response was closed (and the FastAPI endpoints theirs).
    assert after["open_database_files"] == 0
    # request_finished (sent by the response's close()) fired for every Django request
    # but the report being answered.
    assert after["started"] - after["finished"] == 1
    assert after["started"] - before["started"] >= 150  # three Django paths x 50


def test_streamed_django_response_arrives_incrementally(server: ServerProcess) -> None:
    token = uuid.uuid4().hex
    with (
        httpx.Client(base_url=server.base_url, timeout=10.0) as streaming,
        httpx.Client(base_url=server.base_url, timeout=10.0) as other,
    ):
        url = f"/stream/held/?token={token}"
        with streaming.stream("GET", url) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers
            chunks = response.iter_raw()
            started = time.monotonic()
            first = next(chunks)
            # The view has not produced its last chunk yet: it waits for this release.
            assert first == b"first\n"
            assert time.monotonic() - started < 5.0
            assert other.get(f"/stream/release/?token={token}").text == "released\n"
            rest = b"".join(chunks)
    assert rest == b"last: released\n"


def test_streamed_csv_export(client: httpx.Client) -> None:
    with client.stream("GET", "/export.csv") as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["content-disposition"] == "attachment; filename=notes.csv"
        lines = [line for line in response.iter_lines() if line]
    assert lines[0] == "id,title,created"
    notes = client.get("/api/notes").json()
    assert [line.split(",")[0] for line in lines[1:]] == [str(n["id"]) for n in notes]
