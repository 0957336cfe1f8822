"""Start real servers as subprocesses on a free loopback port, for tests and the demo.

Theory of operation: ``launch()`` picks a free port on 127.0.0.1, runs the server's
command from the venv (cwd = the repository root, ``PYTHONPATH`` pointing at it so
``tests.live.apps:...`` imports), with stdout and stderr both going to one log file.
``wait_ready()`` polls a TCP connect and then an HTTP GET until the server answers
anything at all, failing early if the process died and, on timeout, with the server's
log in the message. ``stop()`` sends SIGTERM to the pid it started, waits, and then
SIGKILLs the process group it created (gunicorn and uWSGI have worker children).
A log is deleted when the server is stopped after a clean run and kept (its path is
printed) when the body of ``running_server()`` raised.

    from tests.live.servers import running_server   # in a test module

    with running_server("uvicorn-h11", "tests.live.apps:w2a_probe") as srv:
        urllib.request.urlopen(srv.url("/a?b=1"), timeout=5)

Test modules and the servers use one module name for everything here: ``tests/`` is a
package, the tests import ``tests.live.servers`` and the servers import apps as
``tests.live.apps:NAME``, both from the repository root (a second name would make
mypy see each file twice and give ``CURRENT_TEST_MARKED_SERVERS`` two copies).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[2]
# The venv the tests run in (``.venv/bin/pytest`` makes this ``.venv/bin``); servers are
# started from the same place so they see the same packages.
BIN = Path(sys.executable).parent
PYTHON = str(Path(sys.executable))
HOST = "127.0.0.1"
LOG_DIR = Path(tempfile.gettempdir()) / "bridgeway-live-logs"

Argv = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class ServerSpec:
    """How to run one server: ``argv(app, port)`` gives the command line.

    ``app`` is ``"module:attr"``; ``kind`` says which kind of app the server hosts.
    """

    name: str
    kind: Literal["asgi", "wsgi"]
    argv: Argv
    startup_timeout: float = 30.0
    stop_timeout: float = 10.0


def master_fifo(port: int) -> Path:
    """uWSGI's master FIFO for the server on ``port``: writing ``q`` to it is uWSGI 2.0's
    graceful stop (requests finish, then the workers exit through the interpreter's exit
    hooks); its SIGTERM with ``--die-on-term`` is the brutal one."""
    return LOG_DIR / f"uwsgi-{port}.fifo"


def _command(template: str) -> Argv:
    # Split first, then fill in: a path with a space stays one argument.
    words = template.split()

    def argv(app: str, port: int) -> list[str]:
        values = {
            "bin": str(BIN),
            "venv": str(BIN.parent),
            "py": PYTHON,
            "root": str(ROOT),
            "host": HOST,
            "fifo": str(master_fifo(port)),
        }
        return [w.format(app=app, port=port, **values) for w in words]

    return argv


def _table(kind: Literal["asgi", "wsgi"], commands: dict[str, str]) -> dict[str, ServerSpec]:
    return {name: ServerSpec(name, kind, _command(cmd)) for name, cmd in commands.items()}


# ASGI servers, hosting an ASGI app (e.g. ``WSGIToASGI(wsgi_probe)``).
ASGI_SERVERS = _table(
    "asgi",
    {
        "uvicorn-h11": "{bin}/uvicorn {app} --host {host} --port {port}"
        " --http h11 --loop asyncio --no-access-log",
        "uvicorn-httptools": "{bin}/uvicorn {app} --host {host} --port {port}"
        " --http httptools --loop uvloop --no-access-log",
        "hypercorn-asyncio": "{bin}/hypercorn -k asyncio -b {host}:{port} {app}",
        "hypercorn-trio": "{bin}/hypercorn -k trio -b {host}:{port} {app}",
        "daphne": "{bin}/daphne -b {host} -p {port} {app}",
        "granian-asgi": "{bin}/granian --interface asgi --host {host} --port {port}"
        " --workers 1 --no-ws {app}",
        "gunicorn-uvicorn": "{bin}/gunicorn -k uvicorn_worker.UvicornWorker -w 1"
        " -b {host}:{port} {app}",
    },
)

# WSGI servers, hosting a WSGI app (e.g. ``ASGIToWSGI(asgi_probe)``).
WSGI_SERVERS = _table(
    "wsgi",
    {
        "gunicorn-sync": "{bin}/gunicorn -k sync -w 1 -b {host}:{port} {app}",
        "gunicorn-gthread": "{bin}/gunicorn -k gthread -w 1 --threads 4 -b {host}:{port} {app}",
        "waitress": "{bin}/waitress-serve --listen={host}:{port} {app}",
        # werkzeug and wsgiref have no command line taking "module:attr" and a port.
        "werkzeug": "{py} -m tests.live.run_wsgi werkzeug {app} {port}",
        "wsgiref": "{py} -m tests.live.run_wsgi wsgiref {app} {port}",
        "cheroot": "{bin}/cheroot --bind {host}:{port} {app}",
        "granian-wsgi": "{bin}/granian --interface wsgi --host {host} --port {port}"
        " --workers 1 {app}",
        # --die-on-term: without it uWSGI takes SIGTERM as "reload".
        "uwsgi": "{bin}/uwsgi --http-socket {host}:{port} --module {app} --master"
        " --processes 1 --threads 4 --die-on-term --need-app --virtualenv {bin}/.."
        " --pythonpath {root} --disable-logging --master-fifo {fifo}",
    },
)

# Greenlet WSGI servers: every request is a greenlet of the worker's one OS thread. Not in
# WSGI_SERVERS (the conformance suite's table): tests/servers/test_live_a2w_greenlet.py runs them.
# gunicorn 26 dropped the eventlet worker: scripts/_venv.sh installs the last release that
# has it into the venv's gunicorn-eventlet/ directory, first on that server's PYTHONPATH.
GUNICORN_EVENTLET = BIN.parent / "gunicorn-eventlet"
GREENLET_SERVERS = _table(
    "wsgi",
    {
        "gunicorn-gevent": "{bin}/gunicorn -k gevent -w 1 -b {host}:{port} {app}",
        "gunicorn-eventlet": "env PYTHONPATH={venv}/gunicorn-eventlet:{root}"
        " {py} -m gunicorn -k eventlet -w 1 -b {host}:{port} {app}",
        "uwsgi-gevent": "{bin}/uwsgi --http-socket {host}:{port} --module {app} --master"
        " --processes 1 --gevent 100 --gevent-early-monkey-patch --die-on-term --need-app"
        " --virtualenv {bin}/.. --pythonpath {root} --disable-logging",
    },
)

# WSGI hosts from Debian's packages (scripts/hosts.sh installs them), each set up the way
# docs/deployment.md says by tests.live.hosts: Apache mod_wsgi (mod_wsgi-express, daemon
# mode), Phusion Passenger Standalone, nginx in front of uWSGI's uwsgi protocol.
WSGI_HOSTS = _table(
    "wsgi",
    {
        "mod_wsgi": "{py} -m tests.live.hosts mod_wsgi {app} {port}",
        "passenger": "{py} -m tests.live.hosts passenger {app} {port}",
        "nginx-uwsgi": "{py} -m tests.live.hosts nginx-uwsgi {app} {port}",
    },
)

SERVERS: dict[str, ServerSpec] = {
    **ASGI_SERVERS,
    **WSGI_SERVERS,
    **GREENLET_SERVERS,
    **WSGI_HOSTS,
}


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) if not path else f"{ROOT}{os.pathsep}{path}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ServerFailed(RuntimeError):
    """The server did not come up (or died); the message carries its log."""


# Set by tests/conftest.py before each test's setup: whether that test carries the
# `servers` marker. A server started by an unmarked test would make the fast lane
# (-m "not servers") start processes, so launch() refuses it. None: not under pytest.
CURRENT_TEST_MARKED_SERVERS: bool | None = None


@dataclass
class ServerProcess:
    """One server subprocess. Use ``running_server()`` unless you need the two phases."""

    spec: ServerSpec
    app: str
    port: int = 0
    env: Mapping[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not launched"
        return self.proc.pid

    def url(self, target: str = "/") -> str:
        return self.base_url + target

    def launch(self) -> None:
        """Start the process; returns at once (``wait_ready()`` waits)."""
        if CURRENT_TEST_MARKED_SERVERS is False:
            raise RuntimeError(
                f"a test that starts a server process ({self.spec.name}) must be marked"
                " @pytest.mark.servers, so the fast lane (-m 'not servers') stays server-free"
            )
        self.port = self.port or free_port()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f"{self.spec.name}-{self.port}-", suffix=".log", dir=LOG_DIR
        )
        self.log_path = Path(name)
        argv = self.spec.argv(self.app, self.port)
        with os.fdopen(fd, "wb") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            # A session of its own: stop() can reach worker children through the group.
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=server_env(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def _fail(self, why: str) -> ServerFailed:
        return ServerFailed(
            f"{self.spec.name} serving {self.app} on port {self.port}: {why}\n"
            f"--- server log ({self.log_path}) ---\n{self.log()}"
        )

    def wait_ready(self, timeout: float | None = None, path: str = "/") -> None:
        """Poll until the server answers an HTTP GET (any status) or fail with its log."""
        assert self.proc is not None, "server not launched"
        deadline = time.monotonic() + (timeout or self.spec.startup_timeout)
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self._fail(f"exited with code {self.proc.returncode} before it was ready")
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0):
                    pass
                conn = http.client.HTTPConnection(HOST, self.port, timeout=5.0)
                try:
                    conn.request("GET", path)
                    conn.getresponse().read()
                    return
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                last_error = repr(exc)
            time.sleep(0.05)  # polling interval, bounded by the deadline above
        raise self._fail(f"not ready after {timeout or self.spec.startup_timeout}s ({last_error})")

    def stop(self) -> int | None:
        """SIGTERM the pid, wait, then SIGKILL the process group; returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=self.spec.stop_timeout)
        # Children (gunicorn/uWSGI workers) may outlive a master that was killed or
        # crashed: the group is ours alone (start_new_session), so end it too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(timeout=self.spec.stop_timeout)
        master_fifo(self.port).unlink(missing_ok=True)  # uWSGI's, if it left it
        return proc.returncode

    def discard_log(self) -> None:
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def running_servers(
    launches: Sequence[tuple[ServerSpec, str]],
    *,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/",
    startup_timeout: float | None = None,
    stop_timeout: float | None = None,
) -> Iterator[list[ServerProcess]]:
    """Start several servers at once (launch all, then wait for each), stop them all.

    ``stop_timeout`` overrides how long a SIGTERM'd server may take before SIGKILL.
    """
    if stop_timeout is not None:
        launches = [(replace(spec, stop_timeout=stop_timeout), app) for spec, app in launches]
    servers = [ServerProcess(spec, app, env=env) for spec, app in launches]
    failed = True
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready(startup_timeout, ready_path)
        yield servers
        failed = False
    finally:
        for server in servers:
            server.stop()
            if failed:
                # Kept for the post-mortem; pytest shows this for the failing test.
                print(f"server log kept: {server.log_path}", file=sys.stderr)
            else:
                server.discard_log()


@contextlib.contextmanager
def running_server(
    spec: ServerSpec | str,
    app: str,
    *,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/",
    startup_timeout: float | None = None,
    stop_timeout: float | None = None,
) -> Iterator[ServerProcess]:
    """Serve ``app`` ("module:attr") with ``spec`` (or a name from ``SERVERS``)."""
    if isinstance(spec, str):
        spec = SERVERS[spec]
    with running_servers(
        [(spec, app)],
        env=env,
        ready_path=ready_path,
        startup_timeout=startup_timeout,
        stop_timeout=stop_timeout,
    ) as (server,):
        yield server
