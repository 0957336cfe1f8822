"""Apache mod_wsgi beyond the conformance table (issue 15): daemon mode with two
processes, an app mounted below a root path, and the sub-interpreter pitfall of a
hand-written Apache configuration.

* Two daemon processes of two threads each: four slow requests at once need both, so
  both serve; each ran its own lifespan startup (a marker per process and loop) and,
  when Apache stops, its own shutdown.
* ``--mount-point``: Apache's SCRIPT_NAME is the ASGI ``root_path``; ``path`` holds it.
* A plain Apache configuration with two ``WSGIScriptAlias`` of the FastAPI example in
  one daemon process: each gets a sub-interpreter of its own (mod_wsgi's default
  application group). The first imports pydantic-core; the second cannot
  (``ImportError: PyO3 modules do not yet support subinterpreters``): a 500 at once,
  never a hang, and bridgeway's warning in the error log names
  ``WSGIApplicationGroup %{GLOBAL}``. With that line, both are served.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live.hosts import (
    APACHE_USER,
    MODWSGI_VENV,
    code_root_for,
    run_directory,
    shared_directory,
)
from tests.live.servers import PYTHON, ServerSpec, running_server

pytestmark = pytest.mark.servers

PROBE = "tests.conformance.a2w_probe:probe"
EXAMPLE_SCRIPT = "examples/fastapi_on_wsgi/fastapi_on_wsgi.wsgi"


def modwsgi(*options: str) -> ServerSpec:
    return ServerSpec(
        "mod_wsgi",
        "wsgi",
        lambda app, port: [PYTHON, "-m", "tests.live.hosts", "mod_wsgi", app, str(port), *options],
    )


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post_chunked(port: int, target: str) -> tuple[int, float, bytes]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20.0)
    try:
        body = iter([b'{"title": ', b'"chunked"}'])
        headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        conn.request("POST", target, body=body, headers=headers, encode_chunked=True)
        response = conn.getresponse()
        return response.status, time.monotonic() - started, response.read()
    finally:
        conn.close()


def markers_by_pid(markers: Path, kind: str) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for path in markers.glob(f"{kind}-*"):
        _, pid, loop = path.name.split("-")
        found.setdefault(int(pid), set()).add(loop)
    return found


# --- two daemon processes, mounted below /mounted ------------------------------------------


@pytest.fixture(scope="module")
def markers() -> Iterator[Path]:
    with shared_directory("modwsgi-markers") as path:
        yield path


def test_two_processes_each_serve_and_run_their_own_lifespan(markers: Path) -> None:
    spec = modwsgi("--processes", "2", "--threads", "2", "--mount", "/mounted")
    env = {"BRIDGEWAY_MARKERS": str(markers)}
    with running_server(spec, PROBE, env=env, ready_path="/mounted/echo") as srv:
        # The mount: SCRIPT_NAME is the root_path, and path includes it (A2W-SCOPE-05).
        status, body = get(srv.url("/mounted/echo/caf%C3%A9?x=1"))
        assert status == 200, body
        scope = json.loads(body)["scope"]
        assert (scope["root_path"], scope["path"]) == ("/mounted", "/mounted/echo/café")
        assert bytes(scope["raw_path"]) == b"/mounted/echo/caf%C3%A9"
        assert get(srv.url("/elsewhere"))[0] == 404  # Apache's own: outside the mount

        # Four slow requests at once, two threads per process: both processes serve.
        results: list[tuple[int, bytes]] = []
        started = time.monotonic()
        threads = [
            threading.Thread(
                target=lambda: results.append(get(srv.url("/mounted/send/stream?n=3&gap=0.4")))
            )
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15.0)
        elapsed = time.monotonic() - started
        assert [status for status, _ in results] == [200] * 4, results
        assert elapsed < 1.6, f"the four requests did not run at once ({elapsed:.1f}s)"
        started_by = markers_by_pid(markers, "startup")
        assert len(started_by) == 2, f"lifespans started in {started_by}: one process served"
        pids = set(started_by)
        assert srv.stop() == 0  # Apache's graceful stop; the daemons exit
    # Each process ran the lifespan shutdown of every loop it had started.
    deadline = time.monotonic() + 5.0
    while markers_by_pid(markers, "shutdown") != started_by and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval, bounded by the deadline
    assert markers_by_pid(markers, "shutdown") == started_by
    assert set(markers_by_pid(markers, "shutdown")) == pids


# --- a hand-written Apache configuration: sub-interpreters ---------------------------------


APACHE_CONF = """\
# Apache with mod_wsgi in daemon mode, written by hand (no mod_wsgi-express): the
# FastAPI example at two URLs of one daemon process.
ServerRoot {run}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {run}/httpd.pid
ErrorLog /dev/stderr
LogLevel warn
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
{module_config}
User {user}
Group {group}
# The daemon processes' sockets: a directory Apache's user can write (else WSGI0013
# and 503 answers where the default lives in a directory it cannot).
WSGISocketPrefix {run}/wsgi
WSGIDaemonProcess example processes=1 threads=4 python-path={code} home={code}
WSGIProcessGroup example
{application_group}
WSGIChunkedRequest On
WSGIScriptAlias /first {code}/{script}
WSGIScriptAlias /second {code}/{script}
<Directory {code}/examples/fastapi_on_wsgi>
    Require all granted
</Directory>
"""


def _module_config() -> str:
    import subprocess

    express = MODWSGI_VENV / "bin" / "mod_wsgi-express"
    done = subprocess.run(
        [str(express), "module-config"], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


def apache(application_group: str) -> tuple[ServerSpec, Path]:
    """``apache2 -f CONF -DFOREGROUND`` with APACHE_CONF written for the port."""
    import grp
    import pwd

    run = run_directory("apache")
    code = code_root_for(APACHE_USER, run)
    group = grp.getgrgid(pwd.getpwnam(APACHE_USER).pw_gid).gr_name
    module_config = _module_config()

    def argv(app: str, port: int) -> list[str]:
        conf = run / "httpd.conf"
        conf.write_text(
            APACHE_CONF.format(
                run=run,
                port=port,
                module_config=module_config,
                user=APACHE_USER,
                group=group,
                code=code,
                script=app,
                application_group=application_group,
            )
        )
        return ["apache2", "-f", str(conf), "-DFOREGROUND"]

    return ServerSpec("apache-mod_wsgi", "wsgi", argv), run


def _serve_twice(application_group: str, database: Path) -> tuple[list[Any], str]:
    import shutil

    spec, run = apache(application_group)
    env = {"FASTAPI_EXAMPLE_DB": str(database)}
    try:
        with running_server(spec, EXAMPLE_SCRIPT, env=env, ready_path="/none") as srv:
            answers: list[Any] = []
            for mount in ("/first/", "/second/"):
                started = time.monotonic()
                status, body = get(srv.url(mount), timeout=20.0)
                answers.append((mount, status, time.monotonic() - started, body[:300]))
            if application_group:  # WSGIChunkedRequest On: a chunked upload is read
                answers.append(("/first/notes", *post_chunked(srv.port, "/first/notes")))
            log = srv.log()
    finally:
        shutil.rmtree(run, ignore_errors=True)
    return answers, log


@pytest.fixture
def database() -> Iterator[Path]:
    # The daemon runs as www-data: a database directory it may write (tmp_path is 0700).
    with shared_directory("modwsgi-db") as folder:
        yield folder / "notes.sqlite3"


def test_a_second_subinterpreter_fails_clearly_and_global_serves_both(database: Path) -> None:
    answers, log = _serve_twice("", database)
    (first, first_status, _, first_body), (second, second_status, waited, _) = answers
    assert first_status == 200, (first, first_body, log[-3000:])
    assert json.loads(first_body)["app"] == "FastAPI"
    # The second sub-interpreter cannot import pydantic-core: a 500, answered at once.
    assert second_status == 500, (second, log[-3000:])
    assert waited < 10.0
    assert "PyO3 modules do not yet support subinterpreters" in log
    # bridgeway said why, in each sub-interpreter, naming the fix.
    assert re.search(r"ASGIToWSGI: running in the mod_wsgi application group '[^']*\|/second'", log)
    assert "WSGIApplicationGroup %{GLOBAL}" in log

    answers, log = _serve_twice("WSGIApplicationGroup %{GLOBAL}", database)
    *mounts, (_, upload_status, _, upload) = answers
    for mount, status, _, body in mounts:
        assert status == 200, (mount, body, log[-3000:])
        assert json.loads(body)["app"] == "FastAPI"
    assert (upload_status, json.loads(upload)["title"]) == (201, "chunked"), log[-3000:]
    assert "ASGIToWSGI: running in" not in log  # the main interpreter: nothing to say
