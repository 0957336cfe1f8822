"""End to end on loopback: real servers, a real load generator (wrk), both directions.

Run from the repository root: ``.venv/bin/python -m bench.e2e [--quick]``.

* **Flask under uvicorn** (httptools, uvloop, 1 process) through every WSGI->ASGI adapter
  (``bridgeway.WSGIToASGI``, ``a2wsgi.WSGIMiddleware``, uvicorn's own
  ``uvicorn.middleware.wsgi._WSGIMiddleware``, Starlette's deprecated
  ``starlette.middleware.wsgi.WSGIMiddleware``), bridgeway also with
  ``close_after_send=True`` (informational), against the same Flask app served natively
  by gunicorn (gthread, 1 worker, 4 threads). Target 3 of issue 14.
* **FastAPI under gunicorn** (gthread, 1 worker, 8 threads) through every ASGI->WSGI
  adapter (``bridgeway.ASGIToWSGI``, also with ``loop_factory=uvloop.new_event_loop``;
  ``a2wsgi.ASGIMiddleware``), against the floor (FastAPI run on a per-thread loop with no
  translation, under the same gunicorn), FastAPI served natively by uvicorn, and a bare
  WSGI hello callable under the same gunicorn: the server's own ceiling. Targets 5 and 6.

Every server of a scenario is started at once on a free port of 127.0.0.1 (the apps are
``bench.e2e_apps:NAME``), probed until it answers ``200 ... hello``, warmed up, and then
loaded with ``wrk --latency`` (keep-alive, ``-t1 -c16`` by default) for a few seconds per
round; the servers are interleaved round-robin, the order rotated each round. Figures
are requests/s and the p99 latency, medians over the rounds with min..max as the noise
band; each row notes its ratio to a2wsgi measured in the same run. Servers are stopped
by pid (SIGTERM, then SIGKILL to the process group each was started in).

wrk comes from Debian (``apt-get install wrk``); without it the suite stops with a
message.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import REPO, Report, base_parser, interleave

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
GUNICORN_THREADS = 8  # FastAPI's scenario
NATIVE_FLASK_THREADS = 4  # Flask natively on gunicorn gthread (target 3)
UVICORN = (
    "{bin}/uvicorn bench.e2e_apps:{app} --host {host} --port {port}"
    " --http httptools --loop uvloop --no-access-log --log-level warning"
)
GUNICORN = (
    "{bin}/gunicorn -k gthread -w 1 --threads {threads} -b {host}:{port}"
    " --log-level warning bench.e2e_apps:{app}"
)
SERVERS = {"uvicorn": UVICORN, "gunicorn-gthread": GUNICORN}
STRICT = "bridgeway, close_after_send=True"
UVLOOP = "bridgeway, uvloop"


@dataclass(frozen=True)
class Config:
    adapter: str  # the row's name
    server: str  # a key of SERVERS
    app: str  # a name in bench.e2e_apps
    note: str = ""
    threads: int = GUNICORN_THREADS  # gunicorn's --threads


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    configs: tuple[Config, ...]


SCENARIOS = (
    Scenario(
        "flask",
        "Flask under uvicorn",
        (
            Config("bridgeway", "uvicorn", "flask_bridgeway"),
            Config("a2wsgi", "uvicorn", "flask_a2wsgi"),
            Config("uvicorn-wsgi", "uvicorn", "flask_uvicorn_wsgi"),
            Config("starlette-wsgi", "uvicorn", "flask_starlette_wsgi"),
            Config(
                STRICT,
                "uvicorn",
                "flask_bridgeway_strict",
                "close() only after the last send() returned (the opt-in strict order)",
            ),
            Config(
                "gunicorn-native",
                "gunicorn-gthread",
                "flask_native",
                f"Flask on gunicorn gthread, 1 worker, {NATIVE_FLASK_THREADS} threads",
                threads=NATIVE_FLASK_THREADS,
            ),
        ),
    ),
    Scenario(
        "fastapi",
        "FastAPI under gunicorn gthread",
        (
            Config("bridgeway", "gunicorn-gthread", "fastapi_bridgeway"),
            Config("a2wsgi", "gunicorn-gthread", "fastapi_a2wsgi"),
            Config(
                "floor",
                "gunicorn-gthread",
                "fastapi_floor",
                "FastAPI run on a per-thread loop, no translation: the least a bridge costs",
            ),
            Config(
                UVLOOP,
                "gunicorn-gthread",
                "fastapi_bridgeway_uvloop",
                "ASGIToWSGI(loop_factory=uvloop.new_event_loop)",
            ),
            Config("uvicorn-native", "uvicorn", "fastapi_native", "FastAPI on uvicorn"),
            Config(
                "raw-wsgi", "gunicorn-gthread", "raw_wsgi", "bare WSGI hello: gunicorn's ceiling"
            ),
        ),
    ),
)


# ------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One server subprocess in a session (process group) of its own."""

    config: Config
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def argv(self) -> list[str]:
        template = SERVERS[self.config.server]
        values = {
            "bin": str(BIN),
            "host": HOST,
            "port": self.port,
            "app": self.config.app,
            "threads": self.config.threads,
        }
        return [word.format(**values) for word in template.split()]

    def launch(self) -> None:
        self.port = free_port()
        fd, name = tempfile.mkstemp(prefix=f"bench-e2e-{self.config.app}-", suffix=".log")
        self.log_path = Path(name)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv(),
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-3000:]

    def wait_ready(self, timeout: float) -> None:
        """Poll until ``GET /`` answers 200 with a body containing ``hello``."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.config.app} exited early:\n{self.log()}")
            conn = http.client.HTTPConnection(HOST, self.port, timeout=5.0)
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read()
                if response.status == 200 and b"hello" in body:
                    return
                last = f"status {response.status}, body {body[:100]!r}"
            except (OSError, http.client.HTTPException) as exc:
                last = repr(exc)
            finally:
                conn.close()
            time.sleep(0.05)
        raise RuntimeError(f"{self.config.app} not ready after {timeout}s ({last}):\n{self.log()}")

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        # gunicorn's worker may outlive its master; the group is ours alone.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(timeout=timeout)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def running(configs: Sequence[Config], timeout: float = 60.0) -> Iterator[list[Server]]:
    servers = [Server(config) for config in configs]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready(timeout)
        yield servers
    finally:
        for server in servers:
            server.stop()


# ------------------------------------------------------------------------- load


@dataclass
class Load:
    rps: float
    p99_ms: float
    requests: int
    errors: str  # "" when every response was a 2xx/3xx and no socket error happened


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(output: str) -> Load:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    if rps is None or p99 is None or total is None:
        raise RuntimeError(f"cannot parse wrk's output:\n{output}")
    errors = [
        line.strip()
        for line in output.splitlines()
        if line.strip().startswith(("Non-2xx", "Socket errors"))
    ]
    return Load(
        float(rps.group(1)),
        float(p99.group(1)) * UNITS[p99.group(2)],
        int(total.group(1)),
        "; ".join(errors),
    )


def wrk(url: str, seconds: int, connections: int, threads: int) -> Load:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        url,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()}")
    return parse_wrk(proc.stdout)


# ------------------------------------------------------------------------- scenarios


@dataclass
class Settings:
    rounds: int
    seconds: int
    warmup: int
    connections: int
    threads: int


def run_scenario(report: Report, scenario: Scenario, settings: Settings) -> None:
    rps: dict[str, list[float]] = {c.adapter: [] for c in scenario.configs}
    p99: dict[str, list[float]] = {c.adapter: [] for c in scenario.configs}
    errors: dict[str, list[str]] = {c.adapter: [] for c in scenario.configs}
    with running(scenario.configs) as servers:
        if settings.warmup:
            for server in servers:
                wrk(server.url, settings.warmup, settings.connections, settings.threads)

        def case(server: Server) -> Callable[[], float]:
            def run() -> float:
                load = wrk(server.url, settings.seconds, settings.connections, settings.threads)
                name = server.config.adapter
                rps[name].append(load.rps)
                p99[name].append(load.p99_ms)
                if load.errors or load.requests == 0:
                    errors[name].append(load.errors or "no request completed")
                return load.rps

            return run

        interleave(settings.rounds, {s.config.adapter: case(s) for s in servers})
    section = f"{scenario.title}, requests/s"
    for config in scenario.configs:
        row = report.add(section, config.adapter, rps[config.adapter], "req/s")
        row.note = config.note
    for config in scenario.configs:
        latency = p99[config.adapter]
        row = report.add(f"{scenario.title}, p99 latency", config.adapter, latency, "ms")
        row.note = config.note
    for name, problems in errors.items():
        if problems:
            report.notes.append(f"{scenario.title}: {name}: {problems[0]}")
    _note_ratios(report, scenario.title)


def _note_ratios(report: Report, title: str) -> None:
    """Every row gets its figure over a2wsgi's (for p99 latency lower is better)."""
    for kind in ("requests/s", "p99 latency"):
        section = f"{title}, {kind}"
        base = report.get(section, "a2wsgi")
        if base is None or base.median == 0:
            continue
        for row in report.rows:
            if row.section != section or row.median == 0:
                continue
            ratio = row.median / base.median
            text = f"{ratio:.2f}x a2wsgi"
            row.note = f"{text}; {row.note}" if row.note else text


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--seconds", type=int, help="seconds of load per server per round")
    parser.add_argument("--connections", type=int, help="wrk's keep-alive connections")
    parser.add_argument("--threads", type=int, help="wrk's threads")
    parser.add_argument(
        "--scenario", action="append", choices=[s.key for s in SCENARIOS], help="run only these"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    settings = Settings(
        rounds=args.rounds or (1 if args.quick else 3),
        seconds=args.seconds or (1 if args.quick else 5),
        warmup=0 if args.quick else 2,
        connections=args.connections or (4 if args.quick else 16),
        threads=args.threads or 1,
    )
    report = Report("End to end on loopback (wrk)")
    report.settings = {
        "rounds": settings.rounds,
        "seconds per round": settings.seconds,
        "warm-up seconds": settings.warmup,
        "wrk": f"-t{settings.threads} -c{settings.connections} (keep-alive)",
        "uvicorn": "1 process, httptools, uvloop",
        "gunicorn": f"gthread, 1 worker, {GUNICORN_THREADS} threads"
        f" ({NATIVE_FLASK_THREADS} for Flask natively)",
    }
    chosen = [s for s in SCENARIOS if not args.scenario or s.key in args.scenario]
    for scenario in chosen:
        run_scenario(report, scenario, settings)
    flask = "Flask under uvicorn"
    for peer, bound in (("a2wsgi", 2.5), ("uvicorn-wsgi", 1.1), ("gunicorn-native", 2.5)):
        report.ratio(f"{flask}, requests/s", "bridgeway", peer, ">=", bound, goal="3")
    report.ratio(f"{flask}, p99 latency", "bridgeway", "uvicorn-wsgi", "<=", 1.0, goal="3")
    report.ratio(f"{flask}, requests/s", STRICT, "bridgeway", "<=", 1.0, informational=True)
    fastapi = "FastAPI under gunicorn gthread, requests/s"
    report.ratio(fastapi, "bridgeway", "floor", ">=", 0.95, goal="5")
    report.ratio(fastapi, "bridgeway", "a2wsgi", ">=", 2.0, goal="5")
    report.ratio(fastapi, "floor", "raw-wsgi", "<=", 1.0, informational=True)
    # Above 1: uvloop is faster (more requests per second).
    report.ratio(
        fastapi,
        UVLOOP,
        "bridgeway",
        ">",
        1.0,
        label="uvloop/asyncio",
        goal="6",
        informational=True,
    )
    report.notes.append(
        "Load generator and servers share the machine's CPUs (no pinning); p99 is wrk's"
        " latency distribution (coordinated omission not corrected)."
    )
    report.print()
    report.dump(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
