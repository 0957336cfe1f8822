"""Start a WSGI *host* (Apache mod_wsgi, Phusion Passenger, nginx in front of uWSGI) for
the live harness, the way its deployment recipe in docs/deployment.md does.

    python -m tests.live.hosts mod_wsgi    APP PORT [--processes N] [--threads N] [--mount P]
    python -m tests.live.hosts passenger   APP PORT
    python -m tests.live.hosts nginx-uwsgi APP PORT

``APP`` is ``module:attr``, or an entry file: a ``.wsgi`` script (mod_wsgi) or a directory
holding ``passenger_wsgi.py`` (Passenger). The hosts come from Debian's packages and the
``modwsgi`` extra (``scripts/hosts.sh`` installs both); they serve on 127.0.0.1 only.

Theory of operation: each host is prepared in a run directory of its own (a temporary
directory, readable by the user Apache and nginx drop to), then started with its logs on
this process's stdout/stderr, which the harness sends to the server's log file.

* mod_wsgi: ``mod_wsgi-express start-server`` writes an Apache configuration and execs
  ``apache2`` in the foreground; SIGTERM here is passed on as Apache's graceful stop,
  which stops the daemon processes (lifespan shutdown runs at their interpreter exit).
  As root, Apache must drop to a user (``www-data``), which cannot read an interpreter
  installed under ``/root`` (pyenv): the daemon runs Debian's
  ``python3`` from the venv ``$BRIDGEWAY_MODWSGI_VENV``, and the code comes from the
  repository through ``--python-path`` (from a copy when www-data cannot read it).
* Passenger Standalone (builtin engine) runs in the foreground as a child; SIGTERM here is
  passed to the pid in its pid file (its watchdog), which stops the app processes.
* nginx + uWSGI: uWSGI serves the uwsgi protocol (``--socket``) on a second loopback
  port; nginx is started once that port accepts (else its first answers are 502s), with
  the recipe's configuration. SIGTERM here stops nginx, then uWSGI gracefully (``q`` on
  its master FIFO; ``--die-on-term`` SIGTERM only if that did not stop it).

Every wait is bounded; a child that does not stop in time is killed.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# The venv scripts/hosts.sh makes from Debian's python3 with the `modwsgi` extra.
MODWSGI_VENV = Path(os.environ.get("BRIDGEWAY_MODWSGI_VENV", "/opt/bridgeway-hosts/modwsgi-venv"))
# Who Apache's children run as when it is started by root (Debian's default user).
APACHE_USER = "www-data"
# What the hosted code imports from the repository.
CODE_DIRS = ("bridgeway", "tests", "examples")
STOP_TIMEOUT = 15.0


# --- who can read what -------------------------------------------------------------------


def readable_by(path: Path, user: str) -> bool:
    """Whether ``user`` may read ``path`` (and traverse every directory above it), by the
    permission bits alone (no ACLs): what decides it for a daemon that dropped to ``user``."""
    entry = pwd.getpwnam(user)
    if entry.pw_uid == 0:
        return True
    groups = set(os.getgrouplist(user, entry.pw_gid))

    def allows(st: os.stat_result, owner: int, group: int, other: int) -> bool:
        if st.st_uid == entry.pw_uid:
            return bool(st.st_mode & owner)
        if st.st_gid in groups:
            return bool(st.st_mode & group)
        return bool(st.st_mode & other)

    path = path.resolve()
    for parent in reversed(path.parents):
        if not allows(parent.stat(), stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
            return False
    st = path.stat()
    if not allows(st, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH):
        return False
    return not path.is_dir() or allows(st, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)


def code_root_for(user: str, run_dir: Path) -> Path:
    """The repository if ``user`` can read it, else a readable copy of what is hosted."""
    probes = [ROOT / d / "__init__.py" for d in ("bridgeway", "tests/conformance")]
    if all(readable_by(p, user) for p in probes):
        return ROOT
    copy = run_dir / "code"
    for name in CODE_DIRS:
        shutil.copytree(
            ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    for folder, dirs, files in os.walk(copy):
        for name in [*dirs, *files]:
            target = Path(folder) / name
            target.chmod(target.stat().st_mode | stat.S_IRGRP | stat.S_IROTH | _x(target))
    copy.chmod(0o755)
    return copy


def _x(path: Path) -> int:
    return stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0


@contextlib.contextmanager
def shared_directory(prefix: str) -> Iterator[Path]:
    """A directory every host's user may write into (marker files, databases: Apache's
    daemons run as www-data, and pytest's tmp_path is 0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"bridgeway-{prefix}-"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_directory(prefix: str) -> Path:
    """A fresh directory that the users hosts drop to can traverse (mkdtemp's is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=f"bridgeway-{prefix}-"))
    path.chmod(0o755)
    return path


# --- the hosts ---------------------------------------------------------------------------


def split_app(app: str) -> tuple[str, str]:
    module, _, attr = app.partition(":")
    return module, attr or "application"


def modwsgi_argv(
    app: str,
    port: int,
    run_dir: Path,
    *,
    processes: int,
    threads: int,
    mount: str | None,
    venv: Path = MODWSGI_VENV,
) -> list[str]:
    express = venv / "bin" / "mod_wsgi-express"
    if not express.exists():
        raise SystemExit(
            f"{express} is missing: scripts/hosts.sh installs Apache and makes that venv"
            " (scripts/check.sh runs it)"
        )
    as_root = os.getuid() == 0
    code = code_root_for(APACHE_USER, run_dir) if as_root else ROOT
    if app.endswith((".wsgi", ".py")):
        script = Path(app).resolve()
        if code != ROOT and script.is_relative_to(ROOT):
            script = code / script.relative_to(ROOT)
        target = [str(script)]
    else:
        module, attr = split_app(app)
        target = ["--application-type", "module", module, "--callable-object", attr]
    argv = [
        str(express),
        "start-server",
        *target,
        "--host",
        HOST,
        "--port",
        str(port),
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--server-root",
        str(run_dir / "apache"),
        "--python-path",
        str(code),
        "--working-directory",
        str(code),
        "--log-to-terminal",
        "--locale",
        "C.UTF-8",
        # mod_wsgi answers 411 to a chunked request body unless told to accept it.
        "--chunked-request",
    ]
    if mount:
        argv += ["--mount-point", mount]
    if as_root:
        # Apache refuses to serve as root; its children (and the daemons) drop to this.
        argv += [
            "--user",
            APACHE_USER,
            "--group",
            grp.getgrgid(pwd.getpwnam(APACHE_USER).pw_gid).gr_name,
        ]
    return argv


def passenger_app_dir(app: str, run_dir: Path) -> Path:
    """A directory Passenger serves: the given one, or one whose ``passenger_wsgi.py``
    imports ``module:attr``."""
    if Path(app).is_dir():
        return Path(app).resolve()
    module, attr = split_app(app)
    folder = run_dir / "app"
    folder.mkdir()
    (folder / "passenger_wsgi.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        f"from {module} import {attr} as application\n"
    )
    return folder


def passenger_argv(app: str, port: int, run_dir: Path) -> list[str]:
    return [
        "passenger",
        "start",
        str(passenger_app_dir(app, run_dir)),
        "--engine=builtin",
        "--address",
        HOST,
        "--port",
        str(port),
        "--environment",
        "production",
        "--python",
        sys.executable,
        # Two application processes, started at once (each serves one request at a time).
        "--min-instances",
        "2",
        "--max-pool-size",
        "2",
        "--disable-security-update-check",
        "--disable-anonymous-telemetry",
        "--pid-file",
        str(run_dir / "passenger.pid"),
        # Its log (the app's output included) on our stdout, not in the app's directory.
        "--log-file",
        "/dev/stdout",
        "--instance-registry-dir",
        str(run_dir),
    ]


NGINX_CONF = """\
# nginx in front of uWSGI: the recipe of docs/deployment.md, on loopback ports.
daemon off;
master_process on;
worker_processes 1;
pid {run}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {run}/client_body;
    uwsgi_temp_path {run}/uwsgi_temp;
    proxy_temp_path {run}/proxy_temp;
    fastcgi_temp_path {run}/fastcgi_temp;
    scgi_temp_path {run}/scgi_temp;
    server {{
        listen {host}:{port};
        client_max_body_size 64m;
        location / {{
            include {uwsgi_params};
            # The listening address, for the ASGI scope's "server" when no server_name
            # is set (uwsgi_params then sends an empty SERVER_NAME).
            uwsgi_param SERVER_ADDR $server_addr;
            # Streamed responses (StreamingResponse, server-sent events) go out as they
            # are produced, not once nginx's buffers fill.
            uwsgi_buffering off;
            uwsgi_pass {host}:{upstream};
        }}
    }}
}}
"""


def nginx_conf(port: int, upstream: int, run_dir: Path) -> Path:
    path = run_dir / "nginx.conf"
    path.write_text(
        NGINX_CONF.format(
            run=run_dir,
            host=HOST,
            port=port,
            upstream=upstream,
            uwsgi_params="/etc/nginx/uwsgi_params",
        )
    )
    return path


def uwsgi_argv(app: str, upstream: int, fifo: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "uwsgi"),
        "--socket",
        f"{HOST}:{upstream}",
        "--module",
        app,
        "--master",
        "--processes",
        "1",
        "--threads",
        "4",
        "--die-on-term",
        "--need-app",
        "--virtualenv",
        str(Path(sys.executable).parent.parent),
        "--pythonpath",
        str(ROOT),
        "--disable-logging",
        "--master-fifo",
        str(fifo),
    ]


# --- running them ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, child: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"{child.args!r} exited with {child.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1.0):
            return
        time.sleep(0.05)  # polling interval, bounded by the deadline
    raise SystemExit(f"nothing listens on {HOST}:{port} after {timeout}s")


def stop(child: subprocess.Popen[bytes], sig: int = signal.SIGTERM, pid: int | None = None) -> None:
    """Signal ``pid`` (default: the child), wait for the child, kill it if it overstays."""
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid or child.pid, sig)
        try:
            child.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(STOP_TIMEOUT)


class Stopping(Exception):
    """Raised in the main thread by SIGTERM/SIGINT: stop the children."""


def _raise_stopping(signum: int, frame: FrameType | None) -> None:
    raise Stopping


def supervise(
    children: Sequence[subprocess.Popen[bytes]], stoppers: Sequence[Callable[[], None]]
) -> int:
    """Wait until SIGTERM (or a child's death); then stop every child, in order.

    Exit code: 0 after SIGTERM when every child stopped with 0, else the first non-zero.
    """
    code = None
    try:
        while all(c.poll() is None for c in children):
            time.sleep(0.5)  # polling a child's end; SIGTERM interrupts it (Stopping)
        code = next(c.returncode for c in children if c.returncode is not None) or 1
    except Stopping:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for stopper in stoppers:
            stopper()
    if code is None:
        code = next((c.returncode for c in children if c.returncode), 0)
    return code


def run_modwsgi(command: list[str]) -> int:
    apache = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    return supervise([apache], [lambda: stop(apache)])


def run_passenger(app: str, port: int, run_dir: Path) -> int:
    child = subprocess.Popen(passenger_argv(app, port, run_dir), stdin=subprocess.DEVNULL)
    pid_file = run_dir / "passenger.pid"

    def stop_passenger() -> None:
        # The pid in the pid file is Passenger's watchdog: its SIGTERM stops the core
        # and the app processes gracefully (the front-end child then exits too).
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        stop(child, signal.SIGTERM, pid)

    return supervise([child], [stop_passenger])


def stop_uwsgi(child: subprocess.Popen[bytes], fifo: Path) -> None:
    """uWSGI's graceful stop: ``q`` on its master FIFO (running requests finish, then the
    workers exit through the interpreter's exit, where lifespan shutdown runs). Its SIGTERM
    with --die-on-term kills a worker still finishing a request before that exit."""
    if child.poll() is None:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader: the master is gone or not ready
            fd = -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.write(fd, b"q")
            os.close(fd)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(STOP_TIMEOUT)
    stop(child)  # SIGTERM (then SIGKILL) only if it is still running


def run_nginx_uwsgi(app: str, port: int, run_dir: Path) -> int:
    upstream = free_port()
    fifo = run_dir / "uwsgi.fifo"
    uwsgi = subprocess.Popen(uwsgi_argv(app, upstream, fifo), stdin=subprocess.DEVNULL)
    try:
        wait_for_port(upstream, uwsgi, 60.0)
        conf = nginx_conf(port, upstream, run_dir)
        nginx = subprocess.Popen(
            ["nginx", "-c", str(conf), "-e", "stderr"], stdin=subprocess.DEVNULL
        )
    except BaseException:
        stop_uwsgi(uwsgi, fifo)
        raise
    return supervise([nginx, uwsgi], [lambda: stop(nginx), lambda: stop_uwsgi(uwsgi, fifo)])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("host", choices=["mod_wsgi", "passenger", "nginx-uwsgi"])
    parser.add_argument("app")
    parser.add_argument("port", type=int)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--mount", default=None)
    args = parser.parse_args(argv)
    # Signals first: a SIGTERM that comes while the children start still stops them.
    signal.signal(signal.SIGTERM, _raise_stopping)
    signal.signal(signal.SIGINT, _raise_stopping)
    run_dir = run_directory(args.host)
    try:
        if args.host == "mod_wsgi":
            command = modwsgi_argv(
                args.app,
                args.port,
                run_dir,
                processes=args.processes,
                threads=args.threads,
                mount=args.mount,
            )
            return run_modwsgi(command)
        if args.host == "passenger":
            return run_passenger(args.app, args.port, run_dir)
        return run_nginx_uwsgi(args.app, args.port, run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
