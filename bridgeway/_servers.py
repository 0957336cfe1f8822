"""The servers ``bridgeway serve`` knows, and their command lines: pure, no I/O.

Each server hosts one kind of app natively (granian hosts both, with ``--interface``).
An app of the other kind, or an ASGI 2 double callable, is served through
``bridgeway.target:asgi`` / ``bridgeway.target:wsgi``, which import the app named by
the ``BRIDGEWAY_APP`` environment variable and wrap it (``detect.as_asgi``/``as_wsgi``).
werkzeug has no command line taking ``module:attr``: it is run in process.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ._load import TARGET_ENV
from .detect import AppKind

Family = Literal["asgi", "wsgi"]


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int | None = None

    @property
    def bind(self) -> str:
        # An IPv6 literal needs brackets in host:port form (RFC 3986 §3.2.2).
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


Args = Callable[[str, Family, Options], list[str]]


@dataclass(frozen=True)
class Server:
    name: str
    package: str  # the import name that says it is installed (and runs with -m)
    families: tuple[Family, ...]
    args: Args | None  # None: run in process (werkzeug)
    workers: bool = True  # takes --workers
    threads: bool = False  # takes --threads

    def family_for(self, kind: AppKind) -> Family:
        """The family the app is served as: its own when the server hosts it."""
        own: Family = "wsgi" if kind == "wsgi" else "asgi"
        return own if own in self.families else self.families[0]

    def needs_wrapper(self, kind: AppKind) -> bool:
        return kind == "asgi2" or self.family_for(kind) != ("wsgi" if kind == "wsgi" else "asgi")


def _uvicorn(target: str, family: Family, o: Options) -> list[str]:
    return [target, "--host", o.host, "--port", str(o.port), "--workers", str(o.workers)]


def _hypercorn(target: str, family: Family, o: Options) -> list[str]:
    return ["--bind", o.bind, "--workers", str(o.workers), target]


def _granian(target: str, family: Family, o: Options) -> list[str]:
    args = ["--interface", family, "--host", o.host, "--port", str(o.port)]
    return [*args, "--workers", str(o.workers), target]


def _daphne(target: str, family: Family, o: Options) -> list[str]:
    return ["--bind", o.host, "--port", str(o.port), target]


def _gunicorn(target: str, family: Family, o: Options) -> list[str]:
    args = ["--bind", o.bind, "--workers", str(o.workers)]
    if o.threads:
        args += ["--threads", str(o.threads)]  # gunicorn then runs its gthread worker
    return [*args, target]


def _waitress(target: str, family: Family, o: Options) -> list[str]:
    args = [f"--listen={o.bind}"]
    if o.threads:
        args.append(f"--threads={o.threads}")
    return [*args, target]


SERVERS: dict[str, Server] = {
    s.name: s
    for s in (
        Server("uvicorn", "uvicorn", ("asgi",), _uvicorn),
        Server("hypercorn", "hypercorn", ("asgi",), _hypercorn),
        Server("granian", "granian", ("asgi", "wsgi"), _granian),
        Server("daphne", "daphne", ("asgi",), _daphne, workers=False),
        Server("gunicorn", "gunicorn", ("wsgi",), _gunicorn, threads=True),
        Server("waitress", "waitress", ("wsgi",), _waitress, workers=False, threads=True),
        Server("werkzeug", "werkzeug", ("wsgi",), None, workers=False),
    )
}

# The console scripts the packages install (shown by `bridgeway inspect`).
SCRIPTS = {"waitress": "waitress-serve"}


@dataclass(frozen=True)
class Plan:
    """How one server serves one app: ``argv`` after ``python -m <package>``, the
    environment it needs, and the app target it is given."""

    server: Server
    family: Family
    target: str
    env: dict[str, str]
    argv: list[str] | None  # None: in process

    def shell(self, spec: str) -> str:
        """The command line a user would type (console script form)."""
        if self.argv is None:
            return f"bridgeway serve {shlex.quote(spec)} --server {self.server.name}"
        script = SCRIPTS.get(self.server.package, self.server.package)
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        words = " ".join(shlex.quote(w) for w in [script, *self.argv])
        return f"{env} {words}" if env else words


def check_options(server: Server, options: Options) -> str | None:
    """Why these options cannot be given to this server (None when they can)."""
    if options.workers != 1 and not server.workers:
        return f"{server.name} runs one process: --workers {options.workers} is not supported"
    if options.threads is not None and not server.threads:
        return f"{server.name} does not take --threads (only gunicorn and waitress do)"
    return None


def plan(server: Server, spec: str, kind: AppKind, options: Options) -> Plan:
    family = server.family_for(kind)
    env: dict[str, str] = {}
    target = spec
    if server.needs_wrapper(kind):
        target = f"bridgeway.target:{family}"
        env[TARGET_ENV] = spec
    argv = None if server.args is None else server.args(target, family, options)
    return Plan(server, family, target, env, argv)
