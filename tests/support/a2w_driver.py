"""An in-process WSGI "server" for driving ``ASGIToWSGI`` in tests.

``make_environ()`` builds a PEP 3333 environ (native strings holding latin-1 code
points); ``call()`` runs one request the way a WSGI server does: call the app with a
recording ``start_response``, iterate the result, and always call ``close()``. It
returns a ``Result`` with the status, headers, ``exc_info``, the body chunks and the
text written to ``wsgi.errors``. ``StrictInput`` is a ``wsgi.input`` that records every
read and fails the test if the adapter reads past the declared body (a real socket
would block there). ``serving()`` makes an adapter and always shuts it down, so no
loop is left unclosed (``ResourceWarning`` is an error in this suite).
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bridgeway import ASGIToWSGI
from bridgeway._types import Environ, Message, OptExcInfo, Receive, Scope, Send


class StrictInput:
    """A ``wsgi.input`` over ``data`` that records every ``read(n)`` and raises
    ``AssertionError`` when asked for a byte past ``limit`` (the declared
    ``CONTENT_LENGTH``; defaults to ``len(data)``) or when ``read()`` has no size. With
    ``limit > len(data)`` it models a client that left mid-upload: reads past the data
    return ``b""`` early."""

    def __init__(self, data: bytes, limit: int | None = None) -> None:
        self.data = data
        self.limit = len(data) if limit is None else limit
        self.pos = 0
        self.reads: list[int] = []
        self.threads: set[int] = set()
        self.violations: list[str] = []

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        self.threads.add(threading.get_ident())
        if size is None or size < 0:
            self.violations.append("read() without a size")
            raise AssertionError("wsgi.input.read() called without a size")
        if self.pos + size > self.limit:
            self.violations.append(f"read({size}) at {self.pos} past {self.limit}")
            raise AssertionError(f"read({size}) at offset {self.pos} is past {self.limit}")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += len(chunk)
        return chunk


class EndlessInput:
    """A ``wsgi.input`` of ``total`` zero bytes made on the fly (for memory tests);
    raises when read past ``total``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pos = 0
        self.max_read = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0 or self.pos + size > self.total:
            raise AssertionError(f"read({size}) at {self.pos} past {self.total}")
        self.max_read = max(self.max_read, size)
        self.pos += size
        return b"\0" * size


def make_environ(
    method: str = "GET",
    path: str = "/",
    *,
    script_name: str = "",
    query_string: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
    stream: Any = None,
    content_length: str | None = None,
    content_type: str | None = None,
    protocol: str = "HTTP/1.1",
    scheme: str = "http",
    server_name: str | None = "testserver",
    server_port: str | None = "80",
    remote_addr: str | None = "127.0.0.1",
    remote_port: str | None = "54321",
    **extra: Any,
) -> Environ:
    """A PEP 3333 environ. ``path`` is PATH_INFO as a WSGI server gives it (latin-1
    code points); each ``headers`` entry ``("X-Foo", "v")`` becomes ``HTTP_X_FOO``.
    ``body`` sets ``wsgi.input`` (a ``StrictInput``) and ``CONTENT_LENGTH``; ``stream``
    sets ``wsgi.input`` to any object. Keys in ``extra`` are added as given (a ``None``
    value removes the key)."""
    environ: Environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "SERVER_PROTOCOL": protocol,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if query_string is not None:
        environ["QUERY_STRING"] = query_string
    if server_name is not None:
        environ["SERVER_NAME"] = server_name
    if server_port is not None:
        environ["SERVER_PORT"] = server_port
    if remote_addr is not None:
        environ["REMOTE_ADDR"] = remote_addr
    if remote_port is not None:
        environ["REMOTE_PORT"] = remote_port
    for name, value in headers:
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    if body is not None:
        environ["wsgi.input"] = StrictInput(body)
        environ["CONTENT_LENGTH"] = str(len(body))
    else:
        environ["wsgi.input"] = StrictInput(b"")
    if stream is not None:
        environ["wsgi.input"] = stream
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    for key, value in extra.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return environ


class StartResponseRecorder:
    """A ``start_response`` that records its calls (with the time and an event log
    shared with the test) and returns a ``write`` that fails the test."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]], OptExcInfo | None]] = []
        self.log = log if log is not None else []

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
        /,
    ) -> Callable[[bytes], object]:
        self.calls.append((status, list(headers), exc_info))
        self.log.append("start_response")

        def write(data: bytes) -> None:
            raise AssertionError("ASGIToWSGI must not use the write() callable")

        return write


@dataclass
class Result:
    status: str
    headers: list[tuple[str, str]]
    exc_info: OptExcInfo | None
    chunks: list[bytes]
    errors: str
    start_calls: int
    iterable: Iterable[bytes] = field(repr=False)
    error: BaseException | None = None

    @property
    def code(self) -> int:
        return int(self.status.split(" ", 1)[0])

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        assert len(values) <= 1, self.headers
        return values[0] if values else None


def call(
    app: ASGIToWSGI,
    environ: Environ | None = None,
    *,
    log: list[str] | None = None,
    take: int | None = None,
    expect_error: bool = False,
) -> Result:
    """Serve one request as a WSGI server does: call, iterate, always ``close()``.

    :param log: shared event log; ``"pull"`` is appended before each ``next()`` and
        ``"got <n>"`` after it returned a chunk of ``n`` bytes.
    :param take: stop after this many chunks and close early (a client that left).
    :param expect_error: an exception from the iterator is recorded in
        ``Result.error`` instead of failing the test.
    """
    environ = environ if environ is not None else make_environ()
    recorder = StartResponseRecorder(log)
    events = recorder.log
    iterable = app(environ, recorder)
    chunks: list[bytes] = []
    error: BaseException | None = None
    try:
        iterator: Iterator[bytes] = iter(iterable)
        while take is None or len(chunks) < take:
            events.append("pull")
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            except Exception as exc:
                if not expect_error:
                    raise
                error = exc
                break
            assert type(chunk) is bytes
            events.append(f"got {len(chunk)}")
            chunks.append(chunk)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    assert recorder.calls, "start_response was never called"
    status, headers, exc_info = recorder.calls[-1]
    errors = environ["wsgi.errors"]
    return Result(
        status=status,
        headers=headers,
        exc_info=exc_info,
        chunks=chunks,
        errors=errors.getvalue() if isinstance(errors, io.StringIO) else "",
        start_calls=len(recorder.calls),
        iterable=iterable,
        error=error,
    )


@contextmanager
def serving(app: Any, **settings: Any) -> Iterator[ASGIToWSGI]:
    """An ``ASGIToWSGI`` that is shut down (all loops closed) when the block ends."""
    adapter = ASGIToWSGI(app, **settings)
    try:
        yield adapter
    finally:
        adapter.shutdown(timeout=5.0)


async def respond(
    send: Send, body: bytes = b"ok", status: int = 200, headers: Sequence[Any] = ()
) -> None:
    """Send a whole response: one start, one final body."""
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


def ticker_app(ticks: list[float], interval: float) -> Any:
    """An app whose lifespan starts a task that appends to ``ticks`` every ``interval``
    seconds until shutdown; a request answers how many ticks there were so far (whether
    the loop runs while no request does)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()

            async def tick() -> None:
                while True:
                    await asyncio.sleep(interval)
                    ticks.append(time.monotonic())

            task = asyncio.get_running_loop().create_task(tick())
            await send({"type": "lifespan.startup.complete"})
            await receive()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await send({"type": "lifespan.shutdown.complete"})
            return
        await respond(send, str(len(ticks)).encode())

    return app


async def read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """Receive the whole request body; returns it and every message received."""
    messages: list[Message] = []
    parts: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts), messages


class EchoScope:
    """An ASGI app that keeps each scope it got (and a deep-ish copy) and answers ok."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            raise AssertionError("EchoScope does not support lifespan")  # served without
        self.scopes.append(scope)
        await respond(send)


def scope_for(environ: Environ, **settings: Any) -> Scope:
    """The scope an app gets for ``environ`` (lifespan off unless asked for)."""
    settings.setdefault("lifespan", "off")
    app = EchoScope()
    with serving(app, **settings) as adapter:
        result = call(adapter, environ)
    assert result.code == 200, result
    assert len(app.scopes) == 1
    return app.scopes[0]
