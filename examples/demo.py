"""The bridgeway demo: real servers serving bridged apps, exercised by a few requests.

    python -m examples.demo [--port 8000] [--exit-after-requests]

Each entry of ``DEMOS`` is one server process hosting one bridged app, plus a "tour": a
function making a few requests to it and describing what came back. Today there is one
(a Flask app on uvicorn through ``WSGIToASGI``); an ASGI app on a WSGI server through
``ASGIToWSGI`` is added by appending a second ``DemoServer``. The first server gets
``--port`` (a free port if that one is busy, or if it is 0); the others get free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.client import HTTPMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class DemoServer:
    title: str
    #: (host, port) -> the server's command line, run with cwd = the repository root.
    command: Callable[[str, int], list[str]]
    #: base URL -> one line per request made; raises if a request went wrong.
    tour: Callable[[str], Iterator[str]]


# --- the tours -------------------------------------------------------------------------


class TourFailed(Exception):
    """A demo request did not return what it should have."""


def check(ok: object, what: str) -> None:
    if not ok:
        raise TourFailed(what)


def fetch(url: str, form: dict[str, str] | None = None) -> tuple[int, HTTPMessage, bytes]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    with urllib.request.urlopen(url, data=data, timeout=10) as response:
        return response.status, response.headers, response.read()


def h1(body: bytes) -> str:
    match = re.search(r"<h1>(.*?)</h1>", body.decode())
    return match.group(1) if match else ""


def flask_tour(base: str) -> Iterator[str]:
    status, headers, body = fetch(base + "/legacy/")
    links = re.findall(r'href="([^"]+)"', body.decode())
    check(status == 200 and len(links) == 4, f"GET /legacy/ gave {status} {body[:200]!r}")
    yield f"GET /legacy/     -> {status} {headers['Content-Type']}, links made by url_for: {links}"

    status, _, body = fetch(base + links[1])
    check(status == 200 and h1(body) == "Hello, World!", f"GET {links[1]} gave {body[:200]!r}")
    yield f"GET {links[1]} -> {status} {h1(body)!r}"

    status, _, body = fetch(base + "/legacy/greet", {"name": "Ada"})
    check(status == 200 and "Ada" in h1(body), f"POST /legacy/greet gave {status} {body[:200]!r}")
    yield f"POST /legacy/greet -> {status} {h1(body)!r} (form field read from wsgi.input)"

    status, headers, body = fetch(base + links[2])
    lines = body.decode().splitlines()
    check(
        status == 200 and len(lines) == 1001 and lines[-1] == "999,998001,997002999",
        f"GET {links[2]} gave {status}, {len(lines)} lines ending {lines[-1:]}",
    )
    framing = headers.get("Transfer-Encoding") or f"Content-Length {headers['Content-Length']}"
    yield (
        f"GET {links[2]} -> {status} {headers['Content-Type']}, {len(body)} bytes,"
        f" {len(lines)} lines, streamed ({framing})"
    )

    status, _, body = fetch(base + "/api/square/12")
    check(status == 200 and json.loads(body) == {"n": 12, "square": 144}, f"{status} {body!r}")
    yield f"GET /api/square/12 -> {status} {body.decode()} (a FastAPI route beside the Flask app)"


def uvicorn(app: str) -> Callable[[str, int], list[str]]:
    return lambda host, port: [
        str(BIN / "python"), "-m", "uvicorn", app, "--host", host, "--port", str(port),
        "--no-access-log",
    ]  # fmt: skip


DEMOS: tuple[DemoServer, ...] = (
    DemoServer(
        "Flask (WSGI) served by uvicorn (ASGI) through bridgeway.WSGIToASGI",
        uvicorn("examples.flask_on_asgi.app:app"),
        flask_tour,
    ),
    # Next: DemoServer("FastAPI (ASGI) served by gunicorn (WSGI) through ASGIToWSGI", ...)
)


# --- running servers -------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 30.0) -> None:
    """Poll until the server accepts connections and answers HTTP, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is up
        except OSError:
            time.sleep(0.1)  # polling interval, bounded by the deadline
    raise RuntimeError(f"the server did not answer on port {port} within {timeout:.0f}s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def say(line: str = "") -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="port of the first server")
    parser.add_argument(
        "--exit-after-requests",
        action="store_true",
        help="stop the servers after the demo requests instead of serving until Ctrl-C",
    )
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM both end the demo through the `finally` below (SIGINT is set
    # explicitly, as a shell may start a background job with it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    running: list[tuple[DemoServer, subprocess.Popen[bytes], str]] = []
    failures = 0
    try:
        for i, demo in enumerate(DEMOS):
            port = args.port if i == 0 and args.port and port_is_free(args.port) else free_port()
            proc = subprocess.Popen(demo.command(HOST, port), cwd=ROOT)
            running.append((demo, proc, f"http://{HOST}:{port}"))
        for demo, proc, base in running:
            wait_ready(proc, int(base.rsplit(":", 1)[1]))
            say(f"\n== {demo.title}\n   {base}/")
            try:
                for line in demo.tour(base):
                    say(f"   {line}")
            except (TourFailed, OSError) as exc:  # reported; the demo goes on to the next
                failures += 1
                say(f"   FAILED: {exc!r}")
        say()
        if failures:
            say(f"{failures} of {len(running)} demo servers failed")
            return 1
        say(f"All demo requests succeeded on {len(running)} server(s).")
        if args.exit_after_requests:
            return 0
        for demo, _, base in running:
            say(f"Serving {demo.title} at {base}/")
        say("Press Ctrl-C to stop.")
        while all(proc.poll() is None for _, proc, _ in running):
            with contextlib.suppress(subprocess.TimeoutExpired):
                running[0][1].wait(timeout=1.0)
        say("A server stopped on its own; shutting down the others.")
        return 1
    except KeyboardInterrupt:
        say("\nStopping.")
        return 0
    finally:
        for _, proc, _ in running:
            stop(proc)


if __name__ == "__main__":
    sys.exit(main())
