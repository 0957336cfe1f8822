"""``bridgeway`` (also ``python -m bridgeway``): serve or inspect an app of either kind.

    bridgeway serve myproject.wsgi:application --server uvicorn --port 8000
    bridgeway serve myproject.main:api --server gunicorn --workers 4 --threads 8
    bridgeway inspect myproject.main:api

``serve`` imports the app, detects its kind (``detect.app_kind``) and replaces itself
(``exec``, so the pid and the signals are the server's) with
``python -m <server> ...``, naming the app directly when the server hosts its kind, or
``bridgeway.target:asgi|wsgi`` with ``BRIDGEWAY_APP`` set when it must be wrapped.
werkzeug, which has no such command line, runs in this process. ``--dry-run`` prints
the command instead. Errors (an unknown or missing server, an app that cannot be
imported or whose kind is unclear, options a server does not take) are one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn

from ._load import LoadError, load
from ._servers import SERVERS, Options, Plan, Server, check_options, plan
from ._version import __version__
from .asgi_to_wsgi import ASGIToWSGI
from .detect import AppKind, _name, app_kind, as_wsgi
from .dispatch import ASGIDispatcher, WSGIDispatcher
from .wsgi_to_asgi import WSGIToASGI

__all__ = ("main",)

USAGE_ERROR = 2
_KINDS = {
    "asgi3": "an ASGI 3 app",
    "asgi2": "an ASGI 2 (double callable) app",
    "wsgi": "a WSGI (PEP 3333) app",
}


class Failure(Exception):
    """A one-line reason to stop with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage block: the same shape as every other bridgeway error.
        raise Failure(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bridgeway", description="Serve WSGI and ASGI apps on any server.")
    parser.add_argument("--version", action="version", version=f"bridgeway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve module:attr on a server of either kind")
    serve.add_argument("app", help="the app, as module:attr")
    serve.add_argument("--server", required=True, help=", ".join(SERVERS))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="processes (where supported)")
    serve.add_argument("--threads", type=int, default=None, help="gunicorn and waitress")
    serve.add_argument("--dry-run", action="store_true", help="print the command, do not run")
    inspect = sub.add_parser("inspect", help="say what kind of app it is and how to serve it")
    inspect.add_argument("app", help="the app, as module:attr")
    inspect.add_argument("--host", default="127.0.0.1")
    inspect.add_argument("--port", type=int, default=8000)
    return parser


def installed(server: Server) -> bool:
    return importlib.util.find_spec(server.package) is not None


def _load(spec: str) -> tuple[Any, AppKind]:
    try:
        app = load(spec)
        return app, app_kind(app)
    except (LoadError, TypeError) as exc:
        raise Failure(" ".join(str(exc).split())) from None


def _server(name: str) -> Server:
    server = SERVERS.get(name)
    if server is None:
        raise Failure(f"unknown server {name!r}; choose one of: {', '.join(SERVERS)}")
    if not installed(server):
        raise Failure(f"server {name!r} is not installed (pip install {server.package})")
    return server


def _exec(p: Plan) -> NoReturn:
    assert p.argv is not None
    env = dict(os.environ, **p.env)
    # The app's directory must be importable in the server too (and in its workers).
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.getcwd() if not path else f"{os.getcwd()}{os.pathsep}{path}"
    argv = [sys.executable, "-m", p.server.package, *p.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _werkzeug(app: Any, options: Options) -> None:
    from werkzeug.serving import run_simple

    # werkzeug stops gracefully on Ctrl-C only; SIGTERM (Docker, systemd) would end the
    # process without its exit hooks, and so without ASGIToWSGI's lifespan shutdown
    # (A2W-LIFE-07). This process is ours: make SIGTERM a normal exit too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    run_simple(options.host, options.port, as_wsgi(app), threaded=True)


def serve(args: argparse.Namespace) -> int:
    server = _server(args.server)  # before the import: the cheaper check first
    options = Options(args.host, args.port, args.workers, args.threads)
    why = check_options(server, options)
    if why:
        raise Failure(why)
    app, kind = _load(args.app)
    p = plan(server, args.app, kind, options)
    if args.dry_run:
        print(p.shell(args.app))
        return 0
    if p.argv is None:
        _werkzeug(app, options)
        return 0
    _exec(p)


def _bridgeway_object(app: Any) -> list[str]:
    """What one of bridgeway's own objects is, and how to serve it (else nothing)."""
    if isinstance(app, ASGIToWSGI):
        return [
            f"an ASGIToWSGI adapter: a WSGI app that runs the ASGI app {_name(app.app)}.",
            "Serve it directly on a WSGI server; an ASGI server below is given the ASGI app"
            " it wraps (unwrapped, not bridged twice).",
        ]
    if isinstance(app, WSGIToASGI):
        return [
            f"a WSGIToASGI adapter: an ASGI 3 app that runs the WSGI app {_name(app.app)}.",
            "Serve it directly on an ASGI server; a WSGI server below is given the WSGI app"
            " it wraps (unwrapped, not bridged twice).",
        ]
    for cls, family in ((ASGIDispatcher, "an ASGI 3 app"), (WSGIDispatcher, "a WSGI app")):
        if isinstance(app, cls):
            return [
                f"a bridgeway {cls.__name__}: {family} that routes to mounted apps of both kinds.",
                "A server of the other kind below is given the same mounts as the other"
                " dispatcher (as_asgi() / as_wsgi()).",
            ]
    return []


def inspect(args: argparse.Namespace) -> int:
    app, kind = _load(args.app)
    own = _bridgeway_object(app)
    print(f"{args.app} is {own[0] if own else _KINDS[kind]}")
    for line in own[1:]:
        print(f"  {line}")
    options = Options(args.host, args.port)
    width = max(len(name) for name in SERVERS)
    for name, server in SERVERS.items():
        p = plan(server, args.app, kind, options)
        how = "wrapped" if server.needs_wrapper(kind) else "native"
        state = "installed" if installed(server) else "not installed"
        print(f"  {name:<{width}}  {p.family}  {how:<7}  {state:<13}  {p.shell(args.app)}")
    print(f"or: bridgeway serve {args.app} --server NAME [--host --port --workers --threads]")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return serve(args) if args.command == "serve" else inspect(args)
    except Failure as exc:
        print(f"bridgeway: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130
