"""ASGI -> WSGI, in process: bridgeway.ASGIToWSGI against a2wsgi (issue 14, targets 4, 6
and 7).

Run from the repository root: ``.venv/bin/python -m bench.a2w_inprocess [--quick]``.

* Requests: a raw ASGI hello app and a FastAPI hello app, each through
  ``bridgeway.ASGIToWSGI`` and ``a2wsgi.ASGIMiddleware``, called as WSGI apps (a synthetic
  environ, a ``start_response`` that records, the iterable consumed and ``close()``d),
  from 1 thread and from 8 threads (each doing N requests; µs/request is wall time over
  all requests). The floor runs the ASGI app with ``loop.run_until_complete`` on a loop
  of the calling thread, without any adapter. "bridgeway, uvloop" is ASGIToWSGI with
  ``loop_factory=uvloop.new_event_loop`` (target 6: measured against the default).
* The cost of one bare cross-thread round trip
  (``asyncio.run_coroutine_threadsafe(noop(), loop).result()`` to a loop running in
  another thread): an adapter that hands each request to another thread cannot beat it.
* Streams: a 256 MiB upload (``wsgi.input`` is a file-like producing 64 KiB reads) and a
  256 MiB download (the ASGI app sends 64 KiB chunks with ``more_body=True``), each case
  in a subprocess of its own: MiB/s and the growth of peak RSS (``VmHWM``).
* Slow consumer, the same 256 MiB: a download that the WSGI side iterates at 128 MiB/s
  (``time.sleep`` between chunks) while the ASGI app sends fresh 64 KiB chunks as fast as
  it can, and an upload that the ASGI app receives at 128 MiB/s (``asyncio.sleep``) while
  ``wsgi.input`` hands out fresh 64 KiB reads as fast as they are asked for. MiB/s is
  bounded by the pace; the figure to read is the RSS growth: an adapter without
  backpressure holds the whole body.
"""

from __future__ import annotations

import asyncio
import gc
import io
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, cast

from bench._common import (
    CHUNK,
    MIB,
    SLOW_DOWNLOAD,
    SLOW_UPLOAD,
    ASGIApp,
    Message,
    Pacer,
    Receive,
    Report,
    Scope,
    Send,
    StartResponse,
    Suite,
    WSGIApp,
    child_result,
    interleave,
    peak_rss_mib,
    suite_main,
)

MODULE = "bench.a2w_inprocess"
ADAPTERS = ("floor", "bridgeway", "a2wsgi", "bridgeway, uvloop")
STREAM_ADAPTERS = ("bridgeway", "a2wsgi")
ROUND_TRIP = "cross-thread round trip"
UVLOOP = "bridgeway, uvloop"
THREADS = 8


# ------------------------------------------------------------------------- apps


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain")],
}


async def hello_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


def fastapi_app() -> ASGIApp:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return cast("ASGIApp", app)


async def upload_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    total = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        total += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(total).encode()
    await send(_START)
    await send({"type": "http.response.body", "body": body})


async def slow_upload_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``upload_app`` receiving at ``SLOW_MIB_S`` (it sleeps on the adapter's loop)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    pacer = Pacer()
    total = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        size = len(message.get("body", b""))
        total += size
        more = message.get("more_body", False)
        delay = pacer.delay(size)
        if delay > 0:
            await asyncio.sleep(delay)
    body = str(total).encode()
    await send(_START)
    await send({"type": "http.response.body", "body": body})


_BLOCK = b"x" * CHUNK


async def download_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Streams ``X-Size`` bytes in 64 KiB chunks."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    size = int(dict(scope["headers"])[b"x-size"])
    await send(_START)
    for _ in range(size // CHUNK):
        await send({"type": "http.response.body", "body": _BLOCK, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def fresh_download_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``download_app`` sending a new 64 KiB object each time, as a real app does: an
    adapter that queues the chunks then holds them all (not 4096 references to one).
    Written, not ``bytes(CHUNK)``: calloc'ed zero pages never touched are not in RSS."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    size = int(dict(scope["headers"])[b"x-size"])
    await send(_START)
    for _ in range(size // CHUNK):
        await send({"type": "http.response.body", "body": b"x" * CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


# ------------------------------------------------------------------------- adapters


def floor(app: ASGIApp) -> WSGIApp:
    """The reference: the ASGI app run to completion on a loop of the calling thread."""
    local = threading.local()
    loops: list[asyncio.AbstractEventLoop] = []

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        loop = getattr(local, "loop", None)
        if loop is None:
            loop = local.loop = asyncio.new_event_loop()
            loops.append(loop)  # kept, and closed by close(), so no loop is left to GC
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": environ["REQUEST_METHOD"],
            "scheme": "http",
            "path": environ["PATH_INFO"],
            "raw_path": b"/",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"localhost")],
        }
        body: list[bytes] = []
        status: list[int] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            else:
                body.append(message.get("body", b""))

        loop.run_until_complete(app(scope, receive, send))
        start_response(f"{status[0]} OK", [("Content-Type", "text/plain")])
        return body

    def close() -> None:
        while loops:
            loops.pop().close()

    wsgi.shutdown = close  # type: ignore[attr-defined]
    return wsgi


def make_adapter(name: str, app: ASGIApp) -> WSGIApp:
    if name == "floor":
        return floor(app)
    if name == "bridgeway":
        from bridgeway import ASGIToWSGI

        return _wsgi(ASGIToWSGI, app)
    if name == "a2wsgi":
        from a2wsgi import ASGIMiddleware

        return _wsgi(ASGIMiddleware, app)
    if name == UVLOOP:
        import uvloop

        from bridgeway import ASGIToWSGI

        return cast("WSGIApp", ASGIToWSGI(app, loop_factory=uvloop.new_event_loop))
    raise ValueError(f"unknown adapter {name!r}")


def _wsgi(factory: Any, app: ASGIApp) -> WSGIApp:
    """Wrap ``app`` with an adapter class (each has its own idea of the types)."""
    return cast("WSGIApp", factory(app))


# ------------------------------------------------------------------------- driver

ENVIRON: dict[str, Any] = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/",
    "QUERY_STRING": "",
    "SERVER_NAME": "localhost",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "50000",
    "HTTP_HOST": "localhost",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": io.StringIO(),
    "wsgi.multithread": True,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


class BodyInput:
    """A ``wsgi.input`` of ``size`` bytes, handed out without copying when possible;
    ``fresh``: a new object for every read (as a server's are), so that an adapter
    queueing them holds their bytes."""

    __slots__ = ("fresh", "remaining")

    def __init__(self, size: int, fresh: bool = False) -> None:
        self.remaining = size
        self.fresh = fresh

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0 or size > CHUNK:
            size = CHUNK
        size = min(size, self.remaining)
        self.remaining -= size
        if self.fresh:
            return b"u" * size
        return _BLOCK if size == CHUNK else _BLOCK[:size]

    def readline(self, size: int = -1, /) -> bytes:
        return self.read(size)


class Call:
    """One WSGI call: records ``start_response``, consumes and closes the iterable (at
    the pace of ``pacer``, if given: a WSGI server writing to a slow client)."""

    __slots__ = ("body", "headers", "pacer", "status")

    def __init__(self, pacer: Pacer | None = None) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.body = 0
        self.pacer = pacer

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        self.status, self.headers = status, headers
        return self.write

    def write(self, data: bytes) -> None:
        self.body += len(data)

    def run(self, app: WSGIApp, environ: dict[str, Any]) -> Call:
        result = app(environ, self.start_response)
        pacer = self.pacer
        try:
            for chunk in result:
                self.body += len(chunk)
                if pacer is not None and chunk:
                    delay = pacer.delay(len(chunk))
                    if delay > 0:
                        time.sleep(delay)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return self


def one_request(app: WSGIApp) -> None:
    environ = dict(ENVIRON)
    environ["wsgi.input"] = io.BytesIO()
    Call().run(app, environ)


def one_thread(app: WSGIApp, n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        one_request(app)
    return (time.perf_counter() - start) * 1e6 / n


def many_threads(app: WSGIApp, n: int) -> float:
    """``THREADS`` threads doing ``n`` requests each; wall µs over all requests."""
    gc.collect()
    barrier = threading.Barrier(THREADS + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(n):
            one_request(app)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return (time.perf_counter() - start) * 1e6 / (n * THREADS)


class RoundTrip:
    """A loop running in a thread of its own, and the cost of one hop to it and back."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def measure(self, n: int) -> float:
        async def noop() -> None:
            return None

        loop = self.loop
        gc.collect()
        start = time.perf_counter()
        for _ in range(n):
            asyncio.run_coroutine_threadsafe(noop(), loop).result()
        return (time.perf_counter() - start) * 1e6 / n

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


# ------------------------------------------------------------------------- parts


def run_requests(report: Report, rounds: int, requests: int) -> None:
    round_trip = RoundTrip()
    try:
        for app_name, asgi_app in (("hello", hello_app), ("fastapi", fastapi_app())):
            apps = {name: make_adapter(name, asgi_app) for name in ADAPTERS}
            for name, app in apps.items():  # warm up, and check each adapter answers
                environ = dict(ENVIRON, **{"wsgi.input": io.BytesIO()})
                call = Call().run(app, environ)
                if not call.status.startswith("200") or call.body == 0:
                    raise RuntimeError(f"{name} answered {call.status!r}, {call.body} B")
                one_thread(app, max(10, requests // 10))
            cases: dict[str, Callable[[], float]] = {
                name: partial(one_thread, app, requests) for name, app in apps.items()
            }
            if app_name == "hello":
                cases[ROUND_TRIP] = lambda: round_trip.measure(requests)
            samples = interleave(rounds, cases)
            section = f"{app_name}, 1 thread"
            for name in cases:
                report.add(section, name, samples[name], "µs/req")
            _targets(report, app_name, section)
            if app_name == "hello":
                report.ratio(section, "bridgeway", ROUND_TRIP, "<", 1.0, informational=True)
            per_thread = max(1, requests // THREADS)
            samples = interleave(
                rounds,
                {name: partial(many_threads, app, per_thread) for name, app in apps.items()},
            )
            section = f"{app_name}, {THREADS} threads"
            for name in apps:
                report.add(section, name, samples[name], "µs/req")
            _targets(report, app_name, section)
            for app in apps.values():
                shutdown = getattr(app, "shutdown", None)
                if shutdown is not None:
                    shutdown()
    finally:
        round_trip.close()


STREAM_APPS: dict[str, ASGIApp] = {
    "upload": upload_app,
    "download": download_app,
    SLOW_UPLOAD: slow_upload_app,
    SLOW_DOWNLOAD: fresh_download_app,
}


def child(adapter: str, direction: str, size_mib: int) -> None:
    """One streaming case (runs in its own interpreter); prints one JSON line."""
    size = size_mib * MIB
    upload = direction in ("upload", SLOW_UPLOAD)
    slow = direction in (SLOW_UPLOAD, SLOW_DOWNLOAD)
    app = make_adapter(adapter, STREAM_APPS[direction])

    def call(body: int) -> Call:
        environ = dict(ENVIRON)
        if upload:
            environ.update(REQUEST_METHOD="POST", CONTENT_LENGTH=str(body))
            environ["wsgi.input"] = BodyInput(body, fresh=slow)
            return Call().run(app, environ)
        environ["HTTP_X_SIZE"] = str(body)
        environ["wsgi.input"] = io.BytesIO()
        return Call(Pacer() if slow else None).run(app, environ)

    call(CHUNK)  # warm up: loops, threads, imports
    gc.collect()
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    done = call(size)
    seconds = time.perf_counter() - start
    expected = len(str(size)) if upload else size
    if not done.status.startswith("200") or done.body != expected:
        raise SystemExit(f"{adapter} {direction}: status {done.status!r}, {done.body} bytes")
    print(child_result(seconds, size, rss_before))


def _targets(report: Report, app_name: str, section: str) -> None:
    """Target 4: FastAPI at most 1.15x the floor (1 thread and 8), hello at most 0.05x
    a2wsgi (1 thread). Target 6: uvloop against the default loop, measured."""
    if app_name == "fastapi":
        report.ratio(section, "bridgeway", "floor", "<=", 1.15, goal="4")
        report.ratio(section, "bridgeway", "a2wsgi", "<=", 1.0, informational=True)
    elif section.endswith("1 thread"):
        report.ratio(section, "bridgeway", "a2wsgi", "<=", 0.05, goal="4")
        report.ratio(section, "floor", "a2wsgi", "<=", 0.05, informational=True)
    else:
        report.ratio(section, "bridgeway", "a2wsgi", "<=", 1.0, informational=True)
    # Below 1: uvloop is faster (its µs per request are fewer).
    report.ratio(
        section, UVLOOP, "bridgeway", "<", 1.0, label="uvloop/asyncio", goal="6", informational=True
    )


SUITE = Suite(
    title="ASGI -> WSGI in process (bridgeway.ASGIToWSGI vs a2wsgi)",
    module=MODULE,
    stream_adapters=STREAM_ADAPTERS,
    child=child,
    run_requests=run_requests,
    settings={"threads": THREADS},
    quick_requests=200,
    requests=2000,
    min_stream_ratio=3.0,
    slow_note="the ASGI app's receives, or the WSGI side's iteration,",
)


def main(argv: list[str] | None = None) -> int:
    return suite_main(SUITE, __doc__ or "", argv)


if __name__ == "__main__":
    raise SystemExit(main())
