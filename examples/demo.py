"""The bridgeway demo: real servers serving bridged apps, exercised by a few requests.

    python -m examples.demo [--port 8000] [--exit-after-requests]

Each entry of ``DEMOS`` is one server process hosting one bridged app, plus a "tour": a
function making a few requests to it and describing what came back. There is one per
example: a Flask app mounted in FastAPI on uvicorn (``WSGIToASGI``), a FastAPI app on
waitress (``ASGIToWSGI``), a Django project with FastAPI taking over ``/api`` on
uvicorn, and a Flask app with an MCP server at ``/mcp`` on gunicorn (``WSGIDispatcher``;
its tour is the MCP SDK's own client). The first server gets ``--port`` (a free port if
that one is busy, or if it is 0); the others get free ports.
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
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.client import HTTPMessage
from pathlib import Path
from typing import Any, cast

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


def call(url: str, json_body: object = None) -> tuple[int, HTTPMessage, bytes]:
    """GET, or POST ``json_body`` as JSON; a 4xx/5xx answer is returned, not raised."""
    data = json.dumps(json_body).encode() if json_body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, cast("HTTPMessage", error.headers), error.read()


def fastapi_tour(base: str) -> Iterator[str]:
    status, _, body = call(base + "/")
    info = json.loads(body)
    check(status == 200 and info["app"] == "FastAPI", f"GET / gave {status} {body[:200]!r}")
    yield (
        f"GET /            -> {status}, served on event loop {info['loop']} in thread"
        f" {info['thread']!r} (lifespan ran on {info['lifespans_started']} loop(s))"
    )

    started = time.monotonic()
    status, _, body = call(base + "/notes", {"title": "Hello from the demo"})
    answered = time.monotonic() - started
    note = json.loads(body)
    check(status == 201 and note["title"] == "Hello from the demo", f"{status} {body!r}")
    yield f"POST /notes      -> {status} {body.decode()} in {answered * 1000:.0f} ms (aiosqlite)"

    status, _, body = call(base + "/notes", {"title": ""})
    detail = json.loads(body)["detail"][0]
    check(status == 422, f"POST /notes with an empty title gave {status}")
    yield f"POST /notes      -> {status} {detail['loc']}: {detail['msg']} (validation error)"

    status, _, body = call(base + "/sync/sha256?text=bridgeway&rounds=1000")
    digest = json.loads(body)
    check(status == 200 and len(digest["sha256"]) == 64, f"{status} {body!r}")
    thread = digest["thread"]
    yield f"GET /sync/sha256 -> {status} {digest['sha256'][:16]}... (a def endpoint, {thread!r})"

    status, headers, body = call(base + "/stream?lines=5&delay=0.1")
    lines = body.decode().splitlines()
    stamps = [float(line.split(" at ")[1]) for line in lines]
    check(status == 200 and len(lines) == 5, f"GET /stream gave {status} {body!r}")
    framing = headers.get("Transfer-Encoding") or f"Content-Length {headers['Content-Length']}"
    yield (
        f"GET /stream      -> {status} {len(lines)} lines produced over"
        f" {stamps[-1] - stamps[0]:.1f} s, streamed ({framing})"
    )

    deadline = time.monotonic() + 10.0
    audit: list[dict[str, object]] = []
    while not audit and time.monotonic() < deadline:
        audit = json.loads(call(base + f"/notes/{note['id']}/audit")[2])["audit"]
        if not audit:
            time.sleep(0.05)  # polling interval, bounded by the deadline
    check(audit, "the background task did not write its audit row")
    yield (
        f"GET /notes/{note['id']}/audit -> the BackgroundTask wrote its row after the response"
        f" had gone out (thread {audit[0]['thread']!r})"
    )


def django_tour(base: str) -> Iterator[str]:
    status, _, body = call(base + "/")
    notes = re.findall(r'<li><a href="(/notes/\d+/)">', body.decode())
    check(status == 200 and h1(body) == "Notes, served by Django", f"GET / gave {status}")
    yield f"GET /            -> {status} {h1(body)!r}, {len(notes)} notes listed by a Django view"

    status, _, body = call(base + "/api/notes", {"title": "Added through FastAPI"})
    check(status == 201, f"POST /api/notes gave {status} {body!r}")
    yield f"POST /api/notes  -> {status} {body.decode()} (FastAPI, Django's ORM)"

    status, _, body = call(base + "/api/notes")
    listed = json.loads(body)
    check(status == 200 and len(listed) == len(notes) + 1, f"GET /api/notes gave {body!r}")
    yield f"GET /api/notes   -> {status} {len(listed)} notes as JSON (FastAPI took over /api/)"

    status, headers, body = call(base + "/export.csv")
    rows = body.decode().splitlines()
    check(status == 200 and len(rows) == len(listed) + 1, f"GET /export.csv gave {body!r}")
    framing = headers.get("Transfer-Encoding") or f"Content-Length {headers['Content-Length']}"
    yield f"GET /export.csv  -> {status} {len(rows)} CSV lines, a StreamingHttpResponse ({framing})"

    status, _, body = call(base + "/admin/login/")
    title = re.search(r"<title>(.*?)</title>", body.decode())
    check(status == 200 and title is not None, f"GET /admin/login/ gave {status}")
    assert title is not None
    yield f"GET /admin/login/ -> {status} {title.group(1)!r}"

    status, _, body = call(base + "/debug/connections/")
    report = json.loads(body)
    check(status == 200 and report["open_database_files"] == 0, f"{status} {body!r}")
    yield (
        f"GET /debug/connections/ -> {report['open_database_files']} database files open after"
        f" {report['finished']} Django requests (each closed its connection)"
    )


def mcp_tour(base: str) -> Iterator[str]:
    """The MCP SDK's own client, in the 2025 protocol (a stateful session)."""
    import anyio
    from mcp import Client

    seen: dict[str, Any] = {"arrived": [], "infos": []}

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen["arrived"].append(time.time())

    async def server_info(client: Client) -> None:
        result = await client.call_tool("server_info", {"wait": 0.2})
        seen["infos"].append(result.structured_content)

    async def session() -> None:
        with anyio.fail_after(30.0):
            async with Client(base + "/mcp", mode="legacy", read_timeout_seconds=10) as client:
                seen["protocol"] = client.protocol_version
                seen["tools"] = sorted(tool.name for tool in (await client.list_tools()).tools)
                for title in ("water the plants", "write the report"):
                    await client.call_tool("add", {"title": f"{title} (demo)"})
                args = {"search": "(demo)", "pause": 0.5}
                review = await client.call_tool("review", args, progress_callback=on_progress)
                seen["review"] = review.structured_content
                async with anyio.create_task_group() as group:  # four calls at once
                    for _ in range(4):
                        group.start_soon(server_info, client)

    try:
        anyio.run(session)
    except Exception as exc:  # an ExceptionGroup from the client's task group too
        raise TourFailed(f"the MCP client failed: {exc!r}") from exc
    yield f"MCP initialize   -> protocol {seen['protocol']}, tools {seen['tools']}"
    todos = json.loads(fetch(base + "/todos")[2])
    yield f"call add x2      -> GET /todos (a Flask view) lists {len(todos)} items"
    finished, arrived = seen["review"]["finished_at"], seen["arrived"]
    check(arrived and arrived[0] < finished, f"review: {seen['review']}, progress at {arrived}")
    before = ", ".join(f"{finished - at:.1f} s" for at in arrived)
    yield (
        f"call review      -> {len(arrived)} progress notifications, streamed: they arrived"
        f" {before} before the tool returned"
    )
    infos = seen["infos"]
    loops, lifespans = {i["event_loop"] for i in infos}, {i["lifespans_started"] for i in infos}
    check(len(loops) == 1 and lifespans == {1}, f"server_info: {infos}")
    yield (
        "call server_info x4 at once -> one event loop, one MCP lifespan (its session"
        f" manager) for the process, in thread {infos[0]['loop_thread']!r}"
    )


def gunicorn(config: str, app: str) -> Callable[[str, int], list[str]]:
    return lambda host, port: [
        str(BIN / "gunicorn"), "-c", config, "--threads", "4", "-b", f"{host}:{port}", app,
    ]  # fmt: skip


def waitress(app: str) -> Callable[[str, int], list[str]]:
    return lambda host, port: [
        str(BIN / "waitress-serve"), f"--listen={host}:{port}", "--threads=4", app,
    ]  # fmt: skip


def django_server(host: str, port: int) -> list[str]:
    return [
        str(BIN / "python"), "-m", "examples.django_migration.serve",
        "--host", host, "--port", str(port),
    ]  # fmt: skip


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
    DemoServer(
        "FastAPI (ASGI) served by waitress (WSGI) through bridgeway.ASGIToWSGI",
        waitress("examples.fastapi_on_wsgi.app:application"),
        fastapi_tour,
    ),
    DemoServer(
        "Django (WSGI) + new FastAPI endpoints under /api, served by uvicorn (ASGI)",
        django_server,
        django_tour,
    ),
    DemoServer(
        "Flask (WSGI) + an MCP server (ASGI) at /mcp, served by gunicorn gthread (WSGI)",
        gunicorn("examples/mcp_in_flask/gunicorn.conf.py", "examples.mcp_in_flask.app:application"),
        mcp_tour,
    ),
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
    """SIGINT first, what Ctrl-C sends: every server here then exits through the
    interpreter's exit, so the app's lifespan shutdown and the examples' temporary
    databases are cleaned up (waitress has no SIGTERM handler: SIGTERM kills it without
    that exit). SIGTERM, then SIGKILL, if it does not end in time."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    proc.wait(timeout=timeout)


def log_path(demo: DemoServer, port: int) -> Path:
    folder = Path(tempfile.gettempdir()) / "bridgeway-demo"
    folder.mkdir(exist_ok=True)
    name = re.sub(r"[^a-z0-9]+", "-", demo.title.lower()).strip("-")[:40]
    return folder / f"{name}-{port}.log"


def log_tail(log: Path, lines: int = 30) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(f"   | {line}" for line in text.splitlines()[-lines:])


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
    logs: list[Path] = []
    failures = 0
    try:
        for i, demo in enumerate(DEMOS):
            port = args.port if i == 0 and args.port and port_is_free(args.port) else free_port()
            # Each server's own log goes to a file, not to this terminal, where its
            # lines would cut through the tours; the tour says where the file is.
            log = log_path(demo, port)
            with log.open("wb") as out:
                command = demo.command(HOST, port)
                proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            running.append((demo, proc, f"http://{HOST}:{port}"))
            logs.append(log)
        for (demo, proc, base), log in zip(running, logs, strict=True):
            try:
                wait_ready(proc, int(base.rsplit(":", 1)[1]))
            except RuntimeError:
                say(f"\n== {demo.title}: the server did not start; the end of its log:")
                say(log_tail(log))
                raise
            say(f"\n== {demo.title}\n   {base}/   (server log: {log})")
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
