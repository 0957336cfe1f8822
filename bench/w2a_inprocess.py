"""WSGI -> ASGI, in process: bridgeway.WSGIToASGI against its peers (issue 2, point 10).

Run from the repository root: ``.venv/bin/python -m bench.w2a_inprocess [--quick]``.

* Requests: a hello-world WSGI app and a Flask hello app, each through every adapter and
  through the floor (the WSGI app called directly on the loop with a trivial
  ``start_response``), driven with a synthetic HTTP scope and trivial ``receive``/``send``
  on one asyncio loop: sequentially and 64 at a time (``asyncio.gather``). µs/request.
* Streams: a 256 MiB upload (the app reads ``wsgi.input`` 64 KiB at a time; the driver
  feeds 64 KiB ``http.request`` messages) and a 256 MiB download (the app yields 64 KiB
  chunks; ``send`` consumes them), each case in a subprocess of its own: MiB/s and the
  growth of peak RSS (``VmHWM``) during the transfer.

"uvicorn-wsgi" is uvicorn's built-in implementation,
``uvicorn.middleware.wsgi._WSGIMiddleware``: the public name ``WSGIMiddleware`` there is
an alias of a2wsgi's class whenever a2wsgi is installed. Adapters use their default
settings (what a user gets): bridgeway 40 threads, a2wsgi and uvicorn's middleware 10
workers, asgiref its ``sync_to_async`` executor.
"""

from __future__ import annotations

import asyncio
import gc
import io
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, cast

from bench._common import (
    CHUNK,
    MIB,
    Report,
    base_parser,
    child_result,
    interleave,
    peak_rss_mib,
    stream_rounds,
)

Message = dict[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

MODULE = "bench.w2a_inprocess"
ADAPTERS = ("floor", "bridgeway", "a2wsgi", "asgiref", "uvicorn-wsgi")
STREAM_ADAPTERS = ("bridgeway", "a2wsgi", "asgiref", "uvicorn-wsgi")
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


_BLOCK = b"x" * CHUNK


def download_app(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    """Streams ``X-Size`` bytes in 64 KiB chunks."""
    size = int(environ["HTTP_X_SIZE"])
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
    )
    for _ in range(size // CHUNK):
        yield _BLOCK


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
    disconnect; ``send`` consumes the response, counting body bytes."""

    __slots__ = ("body", "chunks", "done", "scope", "status")

    def __init__(self, scope: Scope, chunks: Iterator[Message] | None = None) -> None:
        self.scope = scope
        self.chunks = chunks
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
            self.body += len(message.get("body", b""))
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


def body_messages(size: int) -> Iterator[Message]:
    block = b"u" * CHUNK
    count = size // CHUNK
    for i in range(count):
        yield {"type": "http.request", "body": block, "more_body": i < count - 1}


# ------------------------------------------------------------------------- parts


def run_requests(report: Report, rounds: int, requests: int) -> None:
    loop = asyncio.new_event_loop()
    try:
        for app_name, wsgi_app in (("hello", hello_app), ("flask", flask_app())):
            apps = {name: make_adapter(name, wsgi_app) for name in ADAPTERS}
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
                for name in ADAPTERS:
                    report.add(section, name, samples[name], "µs/req")
                report.ratio(section, "bridgeway", "a2wsgi", "<=", 0.3)
                report.ratio(section, "bridgeway", "uvicorn-wsgi", "<=", 0.7)
    finally:
        loop.close()


def child(adapter: str, direction: str, size_mib: int) -> None:
    """One streaming case (runs in its own interpreter); prints one JSON line."""
    size = size_mib * MIB
    upload = direction == "upload"
    app = make_adapter(adapter, upload_app if upload else download_app)
    loop = asyncio.new_event_loop()

    def exchange(body: int) -> Exchange:
        if upload:
            headers = [(b"content-length", str(body).encode())]
            return Exchange(scope_for("POST", headers), body_messages(body))
        return Exchange(scope_for("GET", [(b"x-size", str(body).encode())]))

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


def main(argv: list[str] | None = None) -> int:
    args = base_parser(__doc__ or "").parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    rounds = args.rounds or (3 if args.quick else 7)
    requests = args.requests or (128 if args.quick else 2048)
    size_mib = args.size_mib or (16 if args.quick else 256)
    stream_round_count = 1 if args.quick else 3
    report = Report("WSGI -> ASGI in process (bridgeway.WSGIToASGI vs peers)")
    report.settings = {
        "rounds": rounds,
        "requests per round": requests,
        "concurrency": CONCURRENCY,
        "stream size MiB": size_mib,
        "stream rounds": stream_round_count,
    }
    if args.only in (None, "requests"):
        run_requests(report, rounds, requests)
    if args.only in (None, "streams"):
        stream_rounds(
            report, MODULE, STREAM_ADAPTERS, ("upload", "download"), size_mib, stream_round_count
        )
        for direction in ("upload", "download"):
            section = f"{direction} {size_mib} MiB"
            report.ratio(section, "bridgeway", "a2wsgi", ">=", 2.0)
            report.limit(f"{section}, peak RSS growth", "bridgeway", "<", 32.0)
    report.print()
    report.dump(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
