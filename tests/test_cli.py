"""``bridgeway serve`` / ``bridgeway inspect``: command lines (pure), error paths (message
and exit code), and real servers of both families started through the command."""

from __future__ import annotations

import http.client
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bridgeway import cli
from bridgeway._servers import SERVERS, Options, Server, check_options, plan
from tests.live.servers import BIN, HOST, PYTHON, ROOT, ServerSpec, running_servers, server_env

OPTS = Options("127.0.0.1", 8123, workers=2)


@pytest.mark.parametrize(
    ("server", "kind", "expected"),
    [
        ("uvicorn", "asgi3", "uvicorn m:app --host 127.0.0.1 --port 8123 --workers 2"),
        (
            "uvicorn",
            "wsgi",
            "BRIDGEWAY_APP=m:app uvicorn bridgeway.target:asgi --host 127.0.0.1"
            " --port 8123 --workers 2",
        ),
        ("uvicorn", "asgi2", "BRIDGEWAY_APP=m:app uvicorn bridgeway.target:asgi"),
        ("hypercorn", "asgi3", "hypercorn --bind 127.0.0.1:8123 --workers 2 m:app"),
        ("granian", "wsgi", "granian --interface wsgi --host 127.0.0.1 --port 8123"),
        ("granian", "asgi3", "granian --interface asgi --host 127.0.0.1 --port 8123"),
        ("daphne", "wsgi", "BRIDGEWAY_APP=m:app daphne --bind 127.0.0.1 --port 8123"),
        ("gunicorn", "wsgi", "gunicorn --bind 127.0.0.1:8123 --workers 2 m:app"),
        ("gunicorn", "asgi3", "BRIDGEWAY_APP=m:app gunicorn --bind 127.0.0.1:8123"),
        ("waitress", "asgi3", "BRIDGEWAY_APP=m:app waitress-serve --listen=127.0.0.1:8123"),
        ("werkzeug", "asgi3", "bridgeway serve m:app --server werkzeug"),
    ],
)
def test_command_lines(server: str, kind: Any, expected: str) -> None:
    assert plan(SERVERS[server], "m:app", kind, OPTS).shell("m:app").startswith(expected)


def test_ipv6_binds_are_bracketed_and_options_checked() -> None:
    v6 = Options("::1", 9000, threads=4)
    assert plan(SERVERS["gunicorn"], "m:a", "wsgi", v6).argv == [
        "--bind",
        "[::1]:9000",
        "--workers",
        "1",
        "--threads",
        "4",
        "m:a",
    ]
    assert check_options(SERVERS["gunicorn"], v6) is None
    assert check_options(SERVERS["uvicorn"], v6) == (
        "uvicorn does not take --threads (only gunicorn and waitress do)"
    )
    assert check_options(SERVERS["daphne"], OPTS) == (
        "daphne runs one process: --workers 2 is not supported"
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["serve", "tests.live.mixed_apps:raw_wsgi", "--server", "tornado"],
            "unknown server 'tornado'; choose one of: uvicorn, hypercorn, granian, daphne,"
            " gunicorn, waitress, werkzeug",
        ),
        (
            ["serve", "tests.live.mixed_apps:raw_wsgi", "--server", "ghost"],
            "server 'ghost' is not installed (pip install no_such_server_package)",
        ),
        (
            ["serve", "no_such_module:app", "--server", "uvicorn"],
            "cannot import 'no_such_module': ModuleNotFoundError: No module named 'no_such_module'",
        ),
        (
            ["serve", "tests.live.mixed_apps:nothing", "--server", "uvicorn"],
            "'tests.live.mixed_apps' has no attribute 'nothing'",
        ),
        (
            ["inspect", "tests.live.mixed_apps"],
            "app 'tests.live.mixed_apps' must be given as module:attr (e.g. myproject.asgi:app)",
        ),
        (
            ["inspect", "tests.live.mixed_apps:REPLAY_LIMIT"],
            "builtins.int (1024) is not callable, so it is not an app",
        ),
        (
            ["serve", "tests.live.mixed_apps:raw_wsgi", "--server", "daphne", "--workers", "3"],
            "daphne runs one process: --workers 3 is not supported",
        ),
        (
            ["serve", "tests.live.mixed_apps:raw_wsgi"],
            "the following arguments are required: --server",
        ),
    ],
    ids=[
        "unknown-server",
        "missing-package",
        "import-error",
        "no-attribute",
        "no-colon",
        "not-an-app",
        "bad-option",
        "usage",
    ],
)
def test_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    if "ghost" in argv:  # a known server whose package is not installed
        ghost = Server("ghost", "no_such_server_package", ("asgi",), lambda t, f, o: [t])
        monkeypatch.setitem(SERVERS, "ghost", ghost)
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (2, "", f"bridgeway: error: {message}\n")


def test_a_module_that_raises_on_import_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('no config\\nat all')\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "serve", "broken_app:app", "--server", "uvicorn")
    assert code == 2
    assert err == (
        "bridgeway: error: cannot import 'broken_app': RuntimeError: no config at all"
        " (broken_app.py, line 1)\n"
    )


def test_an_import_error_names_the_file_and_line_in_the_users_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure is in a module the app imports, two lines down: that file and line."""
    (tmp_path / "outer_app.py").write_text("import json\nimport inner_dep\n")
    (tmp_path / "inner_dep.py").write_text("x = 1\n\nimport no_such_package_here\n")
    (tmp_path / "bad_syntax.py").write_text("def f(:\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "inspect", "outer_app:app")
    assert code == 2
    assert err == (
        "bridgeway: error: cannot import 'outer_app': ModuleNotFoundError: No module named"
        " 'no_such_package_here' (inner_dep.py, line 3)\n"
    )
    code, _, err = run(capsys, "inspect", "bad_syntax:app")
    assert (code, err) == (
        2,
        "bridgeway: error: cannot import 'bad_syntax': SyntaxError: invalid syntax"
        " (bad_syntax.py, line 1)\n",
    )


ADAPTERS = """
from bridgeway import ASGIToWSGI, WSGIToASGI

async def api(scope, receive, send):
    pass

def legacy(environ, start_response):
    return []

for_wsgi = ASGIToWSGI(api)
for_asgi = WSGIToASGI(legacy)
"""


@pytest.mark.parametrize(
    ("attr", "first", "second"),
    [
        (
            "for_wsgi",
            "is an ASGIToWSGI adapter: a WSGI app that runs the ASGI app adapters_app.api.",
            "Serve it directly on a WSGI server;",
        ),
        (
            "for_asgi",
            "is a WSGIToASGI adapter: an ASGI 3 app that runs the WSGI app adapters_app.legacy.",
            "Serve it directly on an ASGI server;",
        ),
    ],
)
def test_inspect_says_what_an_adapter_is(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attr: str,
    first: str,
    second: str,
) -> None:
    (tmp_path / "adapters_app.py").write_text(ADAPTERS)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "inspect", f"adapters_app:{attr}")
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == f"adapters_app:{attr} {first}"
    assert lines[1].strip().startswith(second)


@pytest.mark.servers
@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            ["uvicorn", "bridgeway.target:asgi", "--port", "0"],
            {},
            "set BRIDGEWAY_APP=module:attr to serve bridgeway.target:asgi or"
            " bridgeway.target:wsgi (or run: bridgeway serve module:attr --server NAME)",
        ),
        (
            ["gunicorn", "--bind", "127.0.0.1:0", "bridgeway.target:wsgi"],
            {"BRIDGEWAY_APP": "no_such_module:app"},
            "cannot import 'no_such_module': ModuleNotFoundError: No module named 'no_such_module'",
        ),
    ],
    ids=["uvicorn-unset", "gunicorn-wrong"],
)
def test_bridgeway_target_fails_at_startup(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    """A missing or wrong BRIDGEWAY_APP stops the server as it starts (it used to start,
    then answer 500 at the first request), with the one line ``bridgeway serve`` gives."""
    base = server_env(env)
    if not env:
        base.pop("BRIDGEWAY_APP", None)
    proc = subprocess.run(
        [PYTHON, "-m", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=base,
        check=False,
    )
    assert proc.returncode != 0
    assert f"LoadError: {message}\n" in proc.stdout + proc.stderr


def test_the_installed_command_exits_2_without_a_traceback() -> None:
    proc = subprocess.run(
        [str(BIN / "bridgeway"), "serve", "nope:app", "--server", "uvicorn"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=server_env(),
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "bridgeway: error: cannot import 'nope': ModuleNotFoundError: No module named 'nope'\n"
    )


def test_inspect_names_the_kind_and_every_server(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", "tests.live.mixed_apps:fastapi_app", "--port", "9000")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "tests.live.mixed_apps:fastapi_app is an ASGI 3 app"
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert set(rows) == set(SERVERS)
    assert rows["uvicorn"].split()[1:4] == ["asgi", "native", "installed"]
    assert rows["uvicorn"].endswith(
        "uvicorn tests.live.mixed_apps:fastapi_app --host 127.0.0.1 --port 9000 --workers 1"
    )
    assert rows["gunicorn"].endswith(
        "BRIDGEWAY_APP=tests.live.mixed_apps:fastapi_app gunicorn --bind 127.0.0.1:9000"
        " --workers 1 bridgeway.target:wsgi"
    )
    assert "wrapped" in rows["waitress"]


def test_dry_run_prints_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["serve", "tests.live.mixed_apps:raw_wsgi", "--server", "hypercorn", "--dry-run"]
    code, out, _ = run(capsys, *argv)
    assert (code, out) == (
        0,
        "BRIDGEWAY_APP=tests.live.mixed_apps:raw_wsgi hypercorn --bind 127.0.0.1:8000 --workers 1"
        " bridgeway.target:asgi\n",
    )


# ------------------------------------------------------------ end to end


def via_cli(server: str) -> ServerSpec:
    """A harness spec that starts ``python -m bridgeway serve APP --server NAME``."""

    def argv(app: str, port: int) -> list[str]:
        return [PYTHON, "-m", "bridgeway", "serve", app, "--server", server, "--port", str(port)]

    return ServerSpec(f"bridgeway-{server}", "asgi", argv, startup_timeout=40.0)


E2E = [
    # (server, app, the app that must answer)
    ("uvicorn", "raw_wsgi", "raw"),  # WSGI app on an ASGI server: wrapped
    ("hypercorn", "raw_wsgi", "raw"),  # wrapped (hypercorn finds the app by eval)
    ("uvicorn", "fastapi_app", "fastapi"),  # native
    ("gunicorn", "fastapi_app", "fastapi"),  # ASGI app on a WSGI server: wrapped
    ("gunicorn", "raw_wsgi", "raw"),  # native
    ("waitress", "fastapi_app", "fastapi"),  # wrapped
    ("werkzeug", "fastapi_app", "fastapi"),  # in process, wrapped
    ("daphne", "raw_wsgi", "raw"),  # wrapped
    ("granian", "raw_wsgi", "raw"),  # native (--interface wsgi)
    ("granian", "fastapi_app", "fastapi"),  # native (--interface asgi)
]


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.mark.servers
def test_serve_end_to_end_on_both_families() -> None:
    launches = [(via_cli(s), f"tests.live.mixed_apps:{app}") for s, app, _ in E2E]
    with running_servers(launches, startup_timeout=40.0) as servers:
        for server, (name, _, expected) in zip(servers, E2E, strict=True):
            conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
            try:
                conn.request("GET", "/hello")
                response = conn.getresponse()
                data = json.loads(response.read())
            finally:
                conn.close()
            assert (response.status, data["app"]) == (200, expected), name
            if name != "werkzeug":
                # exec'd: the pid we started (and will SIGTERM) is the server itself.
                assert f"-m {name}" in cmdline(server.pid), name
