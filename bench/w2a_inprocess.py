"""WSGI -> ASGI, in process: bridgeway.WSGIToASGI against its peers (issue 14, targets 1,
2 and 7).

Run from the repository root: ``.venv/bin/python -m bench.w2a_inprocess [--quick]``.

* Requests: a hello-world WSGI app and a Flask hello app, each through every adapter and
  through the floor (the WSGI app called directly on the loop with a trivial
  ``start_response``), driven with a synthetic HTTP scope and trivial ``receive``/``send``
  on one asyncio loop: sequentially and 64 at a time (``asyncio.gather``). µs/request.
  The Flask sections add bridgeway with ``close_after_send=True`` (the opt-in strict
  order; informational).
* The thread round trip (hello sections, a reference row like the floor): an ASGI app
  that, per request, hands a no-op to an already-running worker thread
  (``queue.SimpleQueue``), is woken back by it (``loop.call_soon_threadsafe`` setting a
  future), then sends the two response messages. Any adapter that runs the WSGI app in a
  thread pays at least this: bridgeway's sequential hello target is a multiple of it
  (target 1: at most 1.3x).
* Streams: a 256 MiB upload (the app reads ``wsgi.input`` 64 KiB at a time; the driver
  feeds 64 KiB ``http.request`` messages) and a 256 MiB download (the app yields 64 KiB
  chunks; ``send`` consumes them), each case in a subprocess of its own: MiB/s and the
  growth of peak RSS (``VmHWM``) during the transfer.
* Slow consumer, the same 256 MiB: a download whose ``send`` sleeps (``asyncio.sleep``)
  so it takes the body at 128 MiB/s while the app yields fresh 64 KiB chunks as fast as
  it can, and an upload whose app reads ``wsgi.input`` at 128 MiB/s (``time.sleep``)
  while the driver offers fresh 64 KiB messages as fast as they are asked for. MiB/s is
  bounded by the pace; the figure to read is the RSS growth: an adapter without
  backpressure holds the whole body.

"uvicorn-wsgi" is uvicorn's built-in implementation,
``uvicorn.middleware.wsgi._WSGIMiddleware``: the public name ``WSGIMiddleware`` there is
an alias of a2wsgi's class whenever a2wsgi is installed (its deprecation warning is
silenced). "starlette-wsgi" is ``starlette.middleware.wsgi.WSGIMiddleware`` (deprecated
by Starlette, warning silenced): it reads the whole request body (``bytes +=``, quadratic
in its size: its 256 MiB uploads are given up, see ``_common.stream_timeout``) and queues
the response in an unbounded stream. Adapters use their default settings (what a user
gets): bridgeway 40 threads, a2wsgi and uvicorn's middleware 10 workers, asgiref its
``sync_to_async`` executor, Starlette anyio's default thread limiter (40).
"""

from __future__ import annotations

import asyncio
import gc
import io
import queue
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator
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

MODULE = "bench.w2a_inprocess"
ADAPTERS = ("floor", "bridgeway", "a2wsgi", "asgiref", "uvicorn-wsgi", "starlette-wsgi")
STREAM_ADAPTERS = ("bridgeway", "a2wsgi", "asgiref", "uvicorn-wsgi", "starlette-wsgi")
ROUND_TRIP = "thread round trip"
STRICT = "bridgeway, close_after_send=True"
CONCURRENCY = 64


# ------------------------------------------------------------------------- apps


def hello_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def flask_app() -> WSGIApp:
    from flask import Flask

    app = Flask("bench")

    @app.get("/")
    def hello() -> str:
        return "hello"

    return app


def upload_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    read = environ["wsgi.input"].read
    total = 0
    while chunk := read(CHUNK):
        total += len(chunk)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(total).encode()]


def slow_upload_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """``upload_app`` reading at ``SLOW_MIB_S`` (it sleeps in its worker thread)."""
    read = environ["wsgi.input"].read
    pacer = Pacer()
    total = 0
    while chunk := read(CHUNK):
        total += len(chunk)
        delay = pacer.delay(len(chunk))
        if delay > 0:
            time.sleep(delay)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(total).encode()]


_BLOCK = b"x" * CHUNK


def download_app(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    """Streams ``X-Size`` bytes in 64 KiB chunks."""
    size = int(environ["HTTP_X_SIZE"])
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
    )
    for _ in range(size // CHUNK):
        yield _BLOCK


def fresh_download_app(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    """``download_app`` yielding a new 64 KiB object each time, as a real app does: an
    adapter that queues the chunks then holds them all (not 4096 references to one).
    Written, not ``bytes(CHUNK)``: calloc'ed zero pages that are never touched would not
    count in RSS."""
    size = int(environ["HTTP_X_SIZE"])
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
    )
    for _ in range(size // CHUNK):
        yield b"x" * CHUNK


_HELLO_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")],
}
_HELLO_BODY: Message = {"type": "http.response.body", "body": b"hello"}


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ThreadRoundTrip:
    """The reference "thread round trip": an ASGI app paying, per request, only what any
    WSGI->ASGI adapter running the app in a thread must: a hand-off to an
    already-running worker thread (a ``queue.SimpleQueue``), the thread waking the loop
    back (``loop.call_soon_threadsafe`` setting a future), then the two response
    messages. The worker does nothing else: no environ, no WSGI call, no body."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[
            tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None
        ] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._work, name="bench-round-trip", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        get = self.jobs.get
        while (job := get()) is not None:
            loop, future = job
            loop.call_soon_threadsafe(_resolve, future)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.jobs.put((loop, future))
        await future
        await send(_HELLO_START)
        await send(_HELLO_BODY)

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()


# ------------------------------------------------------------------------- adapters


def floor(app: WSGIApp) -> ASGIApp:
    """The reference: the WSGI app called on the loop, no thread, no translation."""
    template: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "localhost",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO()
        response: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            response[:] = [status, headers]
            return response.append

        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return asgi


def make_adapter(name: str, app: WSGIApp) -> ASGIApp:
    if name == "floor":
        return floor(app)
    if name == "bridgeway":
        from bridgeway import WSGIToASGI

        return _asgi(WSGIToASGI, app)
    if name == STRICT:
        from bridgeway import WSGIToASGI

        return cast("ASGIApp", WSGIToASGI(app, close_after_send=True))
    if name == "a2wsgi":
        from a2wsgi import WSGIMiddleware

        return _asgi(WSGIMiddleware, app)
    if name == "asgiref":
        from asgiref.wsgi import WsgiToAsgi

        return _asgi(WsgiToAsgi, app)
    if name == "uvicorn-wsgi":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from uvicorn.middleware import wsgi

            # uvicorn.middleware.wsgi.WSGIMiddleware *is* a2wsgi's class whenever a2wsgi is
            # installed; uvicorn's own implementation is the private _WSGIMiddleware.
            return _asgi(wsgi._WSGIMiddleware, app)
    if name == "starlette-wsgi":
        from starlette.exceptions import StarletteDeprecationWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StarletteDeprecationWarning)
            from starlette.middleware.wsgi import WSGIMiddleware as StarletteWSGI

            return _asgi(StarletteWSGI, app)
    raise ValueError(f"unknown adapter {name!r}")


def _asgi(factory: Any, app: WSGIApp) -> ASGIApp:
    """Wrap ``app`` with an adapter class (each peer has its own idea of the types)."""
    return cast("ASGIApp", factory(app))


# ------------------------------------------------------------------------- driver


def scope_for(method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


class Exchange:
    """One request's trivial server side: ``receive`` hands out the body messages, then
    (like a real server) blocks until the response is complete and reports a
    disconnect; ``send`` consumes the response, counting body bytes (at the pace of
    ``pacer``, if given: a slow client)."""

    __slots__ = ("body", "chunks", "done", "pacer", "scope", "status")

    def __init__(
        self,
        scope: Scope,
        chunks: Iterator[Message] | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.scope = scope
        self.chunks = chunks
        self.pacer = pacer
        self.done: asyncio.Future[None] | None = None
        self.status = 0
        self.body = 0

    async def receive(self) -> Message:
        chunks = self.chunks
        if chunks is None:
            self.chunks = iter(())
            return {"type": "http.request", "body": b"", "more_body": False}
        message = next(chunks, None)
        if message is not None:
            return message
        if self.done is None:
            self.done = asyncio.get_running_loop().create_future()
        await self.done
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        else:
            size = len(message.get("body", b""))
            self.body += size
            if self.pacer is not None and size:
                delay = self.pacer.delay(size)
                if delay > 0:
                    await asyncio.sleep(delay)
            if not message.get("more_body", False):
                if self.done is None:
                    self.done = asyncio.get_running_loop().create_future()
                if not self.done.done():
                    self.done.set_result(None)

    async def run(self, app: ASGIApp) -> Exchange:
        await app(self.scope, self.receive, self.send)
        return self


async def one_request(app: ASGIApp) -> None:
    await Exchange(scope_for()).run(app)


async def sequential(app: ASGIApp, n: int) -> int:
    for _ in range(n):
        await one_request(app)
    return n


async def concurrent(app: ASGIApp, n: int) -> int:
    batches = max(1, n // CONCURRENCY)
    for _ in range(batches):
        await asyncio.gather(*(one_request(app) for _ in range(CONCURRENCY)))
    return batches * CONCURRENCY


def body_messages(size: int, fresh: bool = False) -> Iterator[Message]:
    """64 KiB ``http.request`` messages; ``fresh``: a new body object in each (as a
    server's are), so that an adapter queueing them holds their bytes."""
    block = b"u" * CHUNK
    count = size // CHUNK
    for i in range(count):
        body = b"x" * CHUNK if fresh else block
        yield {"type": "http.request", "body": body, "more_body": i < count - 1}


# ------------------------------------------------------------------------- parts


def run_requests(report: Report, rounds: int, requests: int) -> None:
    loop = asyncio.new_event_loop()
    round_trip = ThreadRoundTrip()
    try:
        for app_name, wsgi_app in (("hello", hello_app), ("flask", flask_app())):
            names = ADAPTERS + ((STRICT,) if app_name == "flask" else ())
            apps = {name: make_adapter(name, wsgi_app) for name in names}
            if app_name == "hello":
                apps[ROUND_TRIP] = round_trip
            for name, app in apps.items():  # warm up, and check each adapter answers
                exchange = loop.run_until_complete(Exchange(scope_for()).run(app))
                if exchange.status != 200 or exchange.body != 5:
                    raise RuntimeError(f"{name} answered {exchange.status}, {exchange.body} B")
                loop.run_until_complete(sequential(app, max(10, requests // 10)))
            for mode, drive in (("sequential", sequential), ("64 concurrent", concurrent)):

                def case(
                    app: ASGIApp, drive: Callable[[ASGIApp, int], Awaitable[int]] = drive
                ) -> Callable[[], float]:
                    def run() -> float:
                        gc.collect()
                        start = time.perf_counter()
                        count = loop.run_until_complete(drive(app, requests))
                        return (time.perf_counter() - start) * 1e6 / count

                    return run

                samples = interleave(rounds, {name: case(app) for name, app in apps.items()})
                section = f"{app_name}, {mode}"
                for name in apps:
                    report.add(section, name, samples[name], "µs/req")
                _targets(report, app_name, mode, section)
    finally:
        round_trip.close()
        loop.close()


# Issue 14: (app, mode) -> the ratios bridgeway must meet, as (peer, bound); the goal.
TARGETS: dict[tuple[str, str], tuple[str, tuple[tuple[str, float], ...]]] = {
    ("hello", "sequential"): ("1", ((ROUND_TRIP, 1.3),)),
    ("hello", "64 concurrent"): ("1", (("uvicorn-wsgi", 0.5), ("a2wsgi", 0.2))),
    ("flask", "sequential"): ("2", (("a2wsgi", 0.35), ("uvicorn-wsgi", 0.8))),
    ("flask", "64 concurrent"): ("2", (("a2wsgi", 0.3), ("uvicorn-wsgi", 0.7))),
}


def _targets(report: Report, app_name: str, mode: str, section: str) -> None:
    goal, bounds = TARGETS[(app_name, mode)]
    for peer, bound in bounds:
        report.ratio(section, "bridgeway", peer, "<=", bound, goal=goal)
    if app_name == "hello":
        # Where the thread round trip puts every threaded adapter, and bridgeway.
        report.ratio(section, ROUND_TRIP, "uvicorn-wsgi", "<=", 1.0, informational=True)
        if mode != "sequential":
            report.ratio(section, "bridgeway", ROUND_TRIP, "<=", 1.3, informational=True)
    else:
        # What the opt-in strict order costs (one wait for the loop per request).
        report.ratio(section, STRICT, "bridgeway", "<=", 1.0, informational=True)


STREAM_APPS: dict[str, WSGIApp] = {
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
    loop = asyncio.new_event_loop()

    def exchange(body: int) -> Exchange:
        if upload:
            headers = [(b"content-length", str(body).encode())]
            return Exchange(scope_for("POST", headers), body_messages(body, fresh=slow))
        pacer = Pacer() if slow else None
        return Exchange(scope_for("GET", [(b"x-size", str(body).encode())]), pacer=pacer)

    loop.run_until_complete(exchange(CHUNK).run(app))  # warm up: thread pools, imports
    gc.collect()
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    done = loop.run_until_complete(exchange(size).run(app))
    seconds = time.perf_counter() - start
    expected = len(str(size)) if upload else size
    if done.status != 200 or done.body != expected:
        raise SystemExit(f"{adapter} {direction}: status {done.status}, {done.body} body bytes")
    loop.close()
    print(child_result(seconds, size, rss_before))


SUITE = Suite(
    title="WSGI -> ASGI in process (bridgeway.WSGIToASGI vs peers)",
    module=MODULE,
    stream_adapters=STREAM_ADAPTERS,
    child=child,
    run_requests=run_requests,
    settings={"concurrency": CONCURRENCY},
    quick_requests=128,
    requests=2048,
    min_stream_ratio=2.0,
    slow_note="the WSGI app's reads, or the ASGI send,",
    stream_notes=(
        "starlette-wsgi reads the whole request body before calling the app, growing it"
        " with `bytes +=` (quadratic in its size: 16 MiB takes about a second, 256 MiB"
        " minutes, hence its uploads given up at full size), and queues the response in"
        " an unbounded stream (the whole download, less what the client took meanwhile,"
        " when the client is slow).",
    ),
)


def main(argv: list[str] | None = None) -> int:
    return suite_main(SUITE, __doc__ or "", argv)


if __name__ == "__main__":
    raise SystemExit(main())
