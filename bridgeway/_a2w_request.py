"""One ASGI request served under a WSGI server: the responder behind ASGIToWSGI.

Theory of operation
-------------------
Everything happens in the WSGI server's thread, on the event loop checked out for this
request (see ``_loops``). ``respond()`` starts the app's task and runs the loop until
the app's first body event (or its end), so an error before any byte still becomes a
500 (ASGI-www §Response Start: "need not flush ... until the first Response Body").
It then calls ``start_response`` and returns either a one-element list (the whole
response was one final message: nothing more to run, and the length is known) or this
object as the iterator. Each ``__next__`` releases the app's pending ``send()`` and runs
the loop until the next chunk: the app cannot run ahead of the server (backpressure).

``receive()`` reads ``wsgi.input`` on demand, in bounded chunks, never past
``CONTENT_LENGTH``; a read that may block on the socket runs in the loop's executor so
the loop keeps running timers (A2W-RECV-08). Once the body is read, ``receive()`` waits
until the response is complete or the server closed the iterable, then answers
``http.disconnect``. ``close()`` before the end is a disconnect: pending ``send()``
raises ``ClientDisconnected`` (an ``OSError``, spec 2.4) and the task gets a grace
period before it is cancelled, off the worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._a2w_body import GONE, BodyReader
from ._cycle import BODY, BODY_END, START, TRAILERS, ResponseCycle, State
from ._headers import check_asgi_header, is_hop_by_hop, status_line
from ._scope import build_scope, content_length
from ._types import Environ, Message, StartResponse
from .errors import BadRequest, ClientDisconnected, ProtocolError

if TYPE_CHECKING:
    from ._loops import PooledLoop
    from .asgi_to_wsgi import ASGIToWSGI

logger = logging.getLogger("bridgeway")

_DISCONNECT: Message = {"type": "http.disconnect"}
_NO_BODY_STATUS = (204, 304)


def _caused_by_disconnect(exc: BaseException) -> bool:
    """``exc`` is, or was raised while handling, an ``OSError`` (a few links deep)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, OSError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _plain(
    start_response: StartResponse, status: str, body: bytes, exc_info: Any = None
) -> list[bytes]:
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    start_response(status, headers, exc_info)
    return [body]


class _FileIterable:
    """The body of a pathsend response when the server has no ``wsgi.file_wrapper``."""

    def __init__(self, file: Any, size: int) -> None:
        self.file = file
        self.size = size

    def __iter__(self) -> Iterator[bytes]:
        read, size = self.file.read, self.size
        while data := read(size):
            yield data

    def close(self) -> None:
        self.file.close()


class Request:
    def __init__(
        self, adapter: ASGIToWSGI, environ: Environ, start_response: StartResponse
    ) -> None:
        self.adapter = adapter
        self.environ = environ
        self.start_response = start_response
        self.cycle = ResponseCycle()
        self.head = environ.get("REQUEST_METHOD") == "HEAD"
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.trailers = False  # set by a valid http.response.start
        self.length: int | None = None  # the app's content-length
        self.left: int | None = None  # bytes still owed under it
        self.chunk: bytes | None = None  # the body bytes ready for the server
        self.final = False  # the app sent its final body message
        self.yielded = False  # start_response was called and bytes may be out
        self.exhausted = False
        self.closed = False  # the server closed the iterable
        self.error: BaseException | None = None
        self.task_done = False
        self.ready: asyncio.Future[None] | None = None
        self.pulled: asyncio.Future[None] | None = None
        self.gone: asyncio.Future[None] | None = None  # resolves receive()'s wait
        self.body_left: int | None = 0
        self.body_done = False
        self.read_lock: asyncio.Lock | None = None
        self.reader: BodyReader | None = None
        self.cut = False  # the body was cut at the app's Content-Length
        self.file: Any = None  # the file of http.response.pathsend
        self.ploop: PooledLoop

    # ---------------------------------------------------------- WSGI thread side

    def respond(self) -> Any:
        environ, adapter = self.environ, self.adapter
        try:
            scope = build_scope(environ)
            self.body_left = content_length(environ)
        except BadRequest as exc:
            logger.info("bridgeway: bad request refused before the ASGI app ran: %s", exc)
            return _plain(self.start_response, "400 Bad Request", f"Bad Request: {exc}".encode())
        if self.body_left is None and not environ.get("wsgi.input_terminated"):
            self.body_left = 0  # no length and no EOF marker: no body (A2W-RECV-03)
        ploop = self.ploop = adapter.pool().checkout()
        lifespan = ploop.lifespan
        if lifespan is not None:
            if lifespan.status == "failed":
                adapter.pool().checkin(ploop)
                return _plain(
                    self.start_response, "500 Internal Server Error", b"Internal Server Error"
                )
            state = lifespan.request_state()
            if state is not None:
                scope["state"] = state
        self.loop = ploop.loop
        scope["extensions"] = {"http.response.pathsend": {}}
        self.scope = scope
        ploop.run(self._start_step)
        return self._first_response()

    def _first_response(self) -> Any:
        error = self.error
        if error is not None:
            return self._error_response(error, "raised before the response body began")
        if self.chunk is None:  # the task ended with no body event
            if self.status:
                why = "returned after http.response.start without sending a body"
            else:
                why = "returned without sending http.response.start"
            return self._error_response(
                ProtocolError(f"the ASGI app {why} (ASGI-www §Response Start)"), why
            )
        if self.file is not None:
            return self._file_response(self.file)
        headers = self.headers
        if (
            self.final
            and self.length is None
            and not self.head
            and self.status not in _NO_BODY_STATUS
        ):
            # The whole body is known: give the server its length rather than making it
            # chunk or close the connection (HTTP-08).
            headers.append(("Content-Length", str(len(self.chunk))))
        self.start_response(status_line(self.status), headers)
        self.yielded = True
        if self.final:
            chunk = self.chunk
            self.exhausted = True
            self._release()
            return [chunk] if chunk else []
        return self

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = self.chunk
        if chunk is not None:
            self.chunk = None
            if chunk:
                return chunk
        if self.final or self.exhausted:
            self.exhausted = True
            raise StopIteration
        self.ploop.run(self._next_step)
        if self.error is not None:
            self.exhausted = True
            error = self.error
            if not isinstance(error, ClientDisconnected):
                logger.error(
                    "bridgeway: the ASGI app raised mid-response; the response is aborted",
                    exc_info=error,
                )
            raise error
        chunk = self.chunk
        if chunk is None:
            self.exhausted = True
            raise ProtocolError(
                "the ASGI app returned before its final http.response.body; the response is"
                " aborted (ASGI-www §Response Body)"
            )
        self.chunk = None
        if self.final:
            self.exhausted = True
        if chunk:
            return chunk
        raise StopIteration

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._release()

    def _release(self) -> None:
        """Hand the loop back; if the task still runs, finish it off this thread."""
        if self.reader is not None:
            self.reader.stop(self.adapter.disconnect_grace)
        if self.task_done:
            self.adapter.pool().checkin(self.ploop)
            return
        if self.final:
            timeout = self.adapter.background_timeout
        else:
            # The server closed the response early: the client is gone (A2W-RECV-07).
            timeout = self.adapter.disconnect_grace
            self.ploop.call(self._signal_gone)
        self.ploop.finish_in_background(self.task, timeout)

    def _error_response(self, error: BaseException, why: str) -> list[bytes]:
        logger.error("bridgeway: the ASGI app %s; answered 500", why, exc_info=error)
        errors = self.environ.get("wsgi.errors")
        if errors is not None:
            # A broken error stream must not mask the 500.
            with contextlib.suppress(Exception):
                errors.write(
                    "".join(traceback.format_exception(type(error), error, error.__traceback__))
                )
        self._release()
        self.exhausted = True
        return _plain(
            self.start_response,
            "500 Internal Server Error",
            b"Internal Server Error",
            (type(error), error, error.__traceback__),
        )

    # --------------------------------------------------------------- loop side

    def _start_step(self) -> asyncio.Future[None]:
        self.ready = self.loop.create_future()
        self.task = self.ploop.spawn(self._main())
        return self.ready

    def _next_step(self) -> asyncio.Future[None]:
        ready = self.ready = self.loop.create_future()
        pulled, self.pulled = self.pulled, None
        if pulled is not None and not pulled.done():
            pulled.set_result(None)
        elif self.task_done:
            ready.set_result(None)
        return ready

    def _wake(self) -> None:
        ready = self.ready
        if ready is not None and not ready.done():
            ready.set_result(None)

    def _signal_gone(self) -> None:
        pulled, self.pulled = self.pulled, None
        if pulled is not None and not pulled.done():
            pulled.set_exception(ClientDisconnected("the WSGI server closed the response"))
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)

    async def _main(self) -> None:
        try:
            await self.adapter.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            logger.debug("bridgeway: the ASGI app was cancelled after the client left")
        except BaseException as exc:
            if self.closed and _caused_by_disconnect(exc):
                # Our own ClientDisconnected, raised after the client left, or the app's
                # translation of it (Starlette raises ClientDisconnect from it): not an
                # application error (A2W-SEND-08).
                logger.debug("bridgeway: the ASGI app ended after the client left: %r", exc)
            elif self.final or self.closed:
                logger.error("bridgeway: the ASGI app raised after its response", exc_info=exc)
            else:
                self.error = exc
        finally:
            self.task_done = True
            self._wake()

    async def send(self, message: Message) -> None:
        if self.closed:
            raise ClientDisconnected("the WSGI server closed the response; the client is gone")
        kind = message["type"]
        if kind == "http.response.body":
            body = message.get("body", b"")
            if type(body) is not bytes:
                raise TypeError(
                    f"http.response.body: body must be bytes, not {type(body).__name__}"
                )
            more = bool(message.get("more_body", False))
            if self.cut:
                return  # excess after a cut-off at Content-Length (already logged)
            self.cycle.advance(BODY if more else BODY_END)
            if self.head or self.status in _NO_BODY_STATUS:
                body = b""  # HEAD, 204 and 304 carry no body (HTTP-04)
            left = self.left
            if left is not None:
                if len(body) > left:
                    logger.error(
                        "bridgeway: the ASGI app sent more than its Content-Length (%d);"
                        " the excess was cut",
                        self.length,
                    )
                    body, more = body[:left], False
                    self.cycle.state = State.DONE
                    self.cut = True
                left = self.left = left - len(body)
                if not more and left and not self.head and self.status not in _NO_BODY_STATUS:
                    self.error = ProtocolError(
                        f"the ASGI app sent fewer bytes than its Content-Length ({self.length})"
                    )
                    self._wake()
                    return
            if not more:
                self.chunk = body if self.chunk is None else self.chunk + body
                self.final = True
                if self.gone is not None and not self.gone.done():
                    self.gone.set_result(None)
                self._wake()
                return
            if not body:
                return  # an empty chunk never reaches the wire (A2W-SEND-12)
            self.chunk = body
            pulled = self.pulled = self.loop.create_future()
            self._wake()
            await pulled
        elif kind == "http.response.start":
            self._start(message)
        elif kind == "http.response.trailers":
            if not self.trailers:
                raise ProtocolError(
                    "http.response.trailers without trailers=True in the start message"
                )
            self.cycle.advance(TRAILERS)  # WSGI cannot send trailers: dropped (EXT-08)
        elif kind == "http.response.pathsend":
            self._pathsend(message)
        elif kind in ("http.response.early_hint", "http.response.debug"):
            logger.debug("bridgeway: ignored %s (not advertised; WSGI cannot send it)", kind)
        else:
            raise ValueError(f"unknown ASGI message type {kind!r} for an http scope")

    def _pathsend(self, message: Message) -> None:
        """``http.response.pathsend`` (EXT-06): the file becomes the whole body, handed
        to the server's ``wsgi.file_wrapper`` (sendfile under gunicorn)."""
        if self.cycle.state is not State.STARTED:
            raise ProtocolError(
                "http.response.pathsend must come right after http.response.start, once,"
                " instead of any http.response.body (ASGI extensions §Path Send)"
            )
        path = message["path"]
        if not isinstance(path, str) or not os.path.isabs(path):
            raise ValueError(f"http.response.pathsend: path must be an absolute str, not {path!r}")
        file = open(path, "rb")  # noqa: SIM115 - closed by the WSGI server through close()
        self.cycle.advance(BODY_END)
        self.file = file
        self.chunk = b""
        self.final = True
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)
        self._wake()

    def _file_response(self, file: Any) -> Any:
        headers = self.headers
        if self.length is None and not self.head and self.status not in _NO_BODY_STATUS:
            headers.append(("Content-Length", str(os.fstat(file.fileno()).st_size)))
        self.start_response(status_line(self.status), headers)
        self.yielded = self.exhausted = True
        self._release()
        if self.head or self.status in _NO_BODY_STATUS:
            file.close()
            return []
        wrapper = self.environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            return wrapper(file, self.adapter.chunk_size)
        return _FileIterable(file, self.adapter.chunk_size)

    def _start(self, message: Message) -> None:
        # Validate the whole message into locals first and only then advance the cycle
        # and keep the result: a rejected start (A2W-SEND-03) must leave neither a
        # STARTED state (the app's corrected start would be "a second start") nor
        # half its headers behind.
        status = message["status"]
        if type(status) is not int or not 200 <= status <= 599:
            raise ValueError(
                f"http.response.start: status must be an int in 200-599, got {status!r}"
            )
        headers: list[tuple[str, str]] = []
        length = None
        for header in message.get("headers", ()):
            name, value = header
            check_asgi_header(name, value)
            lower = name.lower()
            if lower == b"content-length":
                if length is not None:
                    if value.strip() != length:
                        raise ValueError("http.response.start: conflicting content-length headers")
                    continue
                length = value.strip()
                if not length.isdigit():
                    raise ValueError(f"http.response.start: invalid content-length {value!r}")
                continue  # added once, below (it used to be sent twice)
            elif is_hop_by_hop(lower):
                continue  # the WSGI server frames the message (A2W-SEND-02)
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        self.cycle.advance(START)
        if length is not None:
            headers.append(("Content-Length", length.decode()))
            self.length = self.left = int(length)
        self.headers = headers
        self.trailers = bool(message.get("trailers", False))
        self.status = status

    async def receive(self) -> Message:
        if self.body_done:
            if not (self.final or self.closed):
                await self._wait_gone()
            return _DISCONNECT
        if self.read_lock is None:
            self.read_lock = asyncio.Lock()
        async with self.read_lock:  # several tasks may call receive() (A2W-RECV-09)
            if self.body_done:
                return await self.receive()
            return await self._read()

    async def _read(self) -> Message:
        left = self.body_left
        if left == 0:
            self.body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        stream = self.environ["wsgi.input"]
        if not isinstance(stream, (io.BytesIO, io.BufferedRandom)):
            # May block on the socket: a helper thread reads ahead (see _a2w_body).
            if self.reader is None:
                self.reader = BodyReader(self.loop, stream, left, self.adapter.chunk_size)
            item = await self.reader.next()
            if item is GONE:
                self.body_done = True
                return _DISCONNECT
            data, more = item
            self.body_done = not more
            return {"type": "http.request", "body": data, "more_body": more}
        # In memory (waitress, tests) or a temp file (waitress): never blocks.
        size = self.adapter.chunk_size if left is None else min(self.adapter.chunk_size, left)
        try:
            data = stream.read(size)
        except (OSError, ValueError) as exc:
            logger.debug("bridgeway: reading wsgi.input failed: %r", exc)
            data = None
        if left is not None:
            if not data:  # b"" before the declared length: the client went away
                self.body_done = True
                return _DISCONNECT
            left = self.body_left = left - len(data)
            more = left > 0
        else:
            if data is None:
                self.body_done = True
                return _DISCONNECT
            more = bool(data)
        if not more:
            self.body_done = True
        return {"type": "http.request", "body": data, "more_body": more}

    async def _wait_gone(self) -> None:
        gone = self.gone
        if gone is None:
            gone = self.gone = self.loop.create_future()
        probe: Callable[[], bool] | None = self.environ.get("waitress.client_disconnected")
        if probe is None:
            await asyncio.shield(gone)
            return
        # waitress can tell whether the client left while the app is silent
        # (A2W-RECV-11): poll it.
        interval = self.adapter.disconnect_poll_interval
        while not gone.done():
            try:
                await asyncio.wait_for(asyncio.shield(gone), interval)
            except asyncio.TimeoutError:
                if probe():
                    return
