"""The application's side of one ASGIToWSGI request: its ``send()`` and ``receive()``.

``send()`` checks every message against the response cycle (``_a2w.states``), validates
start messages before keeping anything (A2W-SEND-03), enforces the app's
``Content-Length`` (A2W-SEND-10), and parks a non-final chunk until the WSGI server
pulls it (backpressure). ``receive()`` reads ``wsgi.input`` on demand in bounded
chunks, never past ``CONTENT_LENGTH``; an input that may block on the socket is read by
a helper thread (``_a2w.body``) so the loop keeps running. After the body it waits
until the response is complete or the server closed it, then answers
``http.disconnect`` (A2W-RECV-06/07), polling waitress's probe while it waits
(A2W-RECV-11). ``Request`` (``_a2w.request``) adds the WSGI side.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._carry import Carried
from .._headers import (
    ASGI_PAIRS,
    NAME_CONTENT_LENGTH,
    NAME_HOP_BY_HOP,
    asgi_header_name,
    check_asgi_value,
    remember_asgi_pair,
)
from .._protocol import NO_BODY_STATUSES, body_read, parse_content_length, read_size
from .._types import Environ, Message
from ..errors import ClientDisconnected, ProtocolError
from .body import GONE, BodyReader
from .states import (
    BODY,
    BODY_END,
    CUT,
    EXCESS,
    PATHSEND,
    SHORT_BODY,
    START,
    TRAILERS,
    ResponseCycle,
    State,
)

if TYPE_CHECKING:
    from .._round_trip import RoundTrip
    from .adapter import Adapter
    from .loops import PooledLoop

logger = logging.getLogger("bridgeway")

DISCONNECT: Message = {"type": "http.disconnect"}
NO_BODY_STATUS = NO_BODY_STATUSES  # (204, 304); the name used here and in _a2w.request


def read_or_none(stream: Any, size: int) -> bytes | None:
    try:
        return stream.read(size)  # type: ignore[no-any-return]
    except Exception as exc:  # any failure of the server's stream: the client is gone
        logger.debug("bridgeway: reading wsgi.input failed: %r", exc)
        return None


class AppChannel:
    __slots__ = (
        "adapter",
        "body_done",
        "body_left",
        "by_message",
        "carried",
        "chunk",
        "closed",
        "cycle",
        "environ",
        "error",
        "file",
        "final",
        "gone",
        "head",
        "headers",
        "left",
        "length",
        "loop",
        "ploop",
        "pulled",
        "read_lock",
        "reader",
        "ready",
        "relay",
        "status",
        "trailers",
        "trip",
        "verbatim",
    )

    def __init__(self, adapter: Adapter, environ: Environ) -> None:
        self.adapter = adapter
        self.environ = environ
        self.loop: asyncio.AbstractEventLoop
        self.ploop: PooledLoop
        self.cycle = ResponseCycle()
        self.head = environ.get("REQUEST_METHOD") == "HEAD"
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.trailers = False  # set by a valid http.response.start
        self.length: int | None = None  # the app's content-length
        self.left: int | None = None  # bytes still owed under it
        self.chunk: bytes | None = None  # the body bytes ready for the server
        # The app's final body is in hand: ``cycle.state in _a2w.states.FINAL`` (DONE or
        # CUT), kept as a plain attribute because the WSGI side reads it at every pull;
        # set only right after the transition into one of those states.
        self.final = False
        self.file: Any = None  # the file of http.response.pathsend
        self.closed = False  # the server closed the iterable
        self.error: BaseException | None = None
        self.ready: asyncio.Future[None] | None = None  # what the WSGI side waits for
        self.pulled: asyncio.Future[None] | None = None
        self.gone: asyncio.Future[None] | None = None  # resolves receive()'s wait
        self.body_left: int | None = 0
        self.body_done = False
        self.read_lock: asyncio.Lock | None = None
        self.reader: BodyReader | None = None
        self.trip: RoundTrip | None = None  # set by Request (_round_trip)
        self.verbatim: tuple[str, list[tuple[str, str]]] | None = None
        # In a live round trip whose server offers trailers or debug: where those
        # messages go instead of being dropped (_carry).
        self.carried: Carried | None = None
        self.by_message = False  # read wsgi.input message by message (_carry.carry_body)
        # Set by send() for a message that goes to the server's send() as the app sent
        # it, in a bare round trip (_carry.Carried.bare; _a2w.nested passes it on).
        self.relay = False

    def _wake(self) -> None:
        ready = self.ready
        if ready is not None and not ready.done():
            ready.set_result(None)
            self.ploop.nudge(ready)

    def _start_early(self, ready: asyncio.Future[None] | None) -> None:
        if ready is self.ready and self.chunk is None and self.error is None:
            self._wake()

    def _trailers_after_close(self, message: Message) -> bool:
        """Trailers the app sends after its final body, once the WSGI server closed the
        complete response: in a live round trip that carries them (_carry) the client
        is still there, waiting for them after the body, as natively (ASGI extensions
        §HTTP Trailers: they follow the final body whenever the app sends them)."""
        carried = self.carried
        if self.final and carried is not None and carried.bare:
            # A bare round trip: whatever comes after the final body is passed on to the
            # server, which judges it as natively (_a2w.nested).
            return True
        return (
            self.final
            and carried is not None
            and carried.trailers
            and not carried.trailers_done
            and message.get("type") == "http.response.trailers"
        )

    def _signal_gone(self) -> None:
        pulled, self.pulled = self.pulled, None
        if pulled is not None and not pulled.done():
            pulled.set_exception(ClientDisconnected("the WSGI server closed the response"))
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)

    async def send(self, message: Message) -> None:
        if self.closed and not self._trailers_after_close(message):
            raise ClientDisconnected("the WSGI server closed the response; the client is gone")
        kind = message["type"]
        if kind == "http.response.body":
            body = message.get("body", b"")
            if type(body) is not bytes:
                # Any buffer, as uvicorn writes it (a memoryview, a typed array view, a
                # bytearray): copied, since the app may reuse it once send() returns; a
                # typed view gives its raw bytes.
                try:
                    body = memoryview(body).tobytes()
                except TypeError:
                    raise TypeError(
                        f"http.response.body: body must be bytes-like, not {type(body).__name__}"
                    ) from None
            more = bool(message.get("more_body", False))
            trip, chunk = self.trip, None
            if trip is not None and trip.chunks:
                # A WSGIToASGI inside deferred a chunk's check to this request's WSGI
                # caller: the app's own object if this is the very message it sent, as
                # it sent it, after a verbatim start; else its check raises here
                # (_round_trip.RoundTrip.chunk).
                chunk = trip.chunk(message, self.verbatim is not None, not more)
            cycle = self.cycle
            if cycle.advance(BODY if more else BODY_END) is CUT:
                return  # excess after a cut-off at Content-Length (already logged)
            if self.head or self.status in NO_BODY_STATUS:
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
                    cycle.advance(EXCESS)
                left = self.left = left - len(body)
                if not more and left and not self.head and self.status not in NO_BODY_STATUS:
                    cycle.advance(SHORT_BODY)
                    self.error = ProtocolError(
                        f"the ASGI app sent fewer bytes than its Content-Length ({self.length})"
                    )
                    self._wake()
                    return
            if chunk is None or self.head or self.status in NO_BODY_STATUS:
                chunk = body
            if not more:
                self.chunk = chunk if self.chunk is None else self.chunk + body
                self.final = True  # the cycle is DONE or CUT
                if self.gone is not None and not self.gone.done():
                    self.gone.set_result(None)
                if self.carried is not None:
                    self.carried.final = True
                self._wake()
                return
            if not body:
                carried = self.carried
                if carried is not None and carried.bare:
                    # A bare round trip: the message reaches the server's send() and
                    # waits for it, as natively (the app does not run ahead of its
                    # client); A2W-SEND-12 is for a WSGI server.
                    self.relay = True
                return  # an empty chunk never reaches the wire (A2W-SEND-12)
            self.chunk = chunk
            pulled = self.pulled = self.loop.create_future()
            self._wake()
            try:
                await pulled
            finally:
                # The future may hold our ClientDisconnected, whose traceback holds this
                # frame: without this the app's frames (and the async generator its
                # streaming body was iterating) form a cycle only the GC frees.
                del pulled
        elif kind == "http.response.start":
            self._start(message)
        elif kind == "http.response.trailers":
            if not self.trailers:
                raise ProtocolError(
                    "http.response.trailers without trailers=True in the start message"
                )
            self.cycle.advance(TRAILERS)
            carried = self.carried
            if carried is None or not carried.trailers or carried.trailers_done:
                return  # WSGI cannot send trailers: dropped (EXT-08)
            if carried.bare:
                # Sent by the app's send() itself, once WSGIToASGI sent the body (_a2w.nested).
                if not message.get("more_trailers", False):
                    carried.trailers_done = True
                self.relay = True
                return
            # A live round trip whose server takes trailers: WSGIToASGI sends them after
            # its final body, as the app sent them (ASGI extensions §HTTP Trailers).
            carried.after_body.append(message)
            if not message.get("more_trailers", False):
                carried.trailers_done = True
                carried.finish()
        elif kind == "http.response.pathsend":
            self._pathsend(message)
        elif (
            kind == "http.response.debug"
            and self.carried is not None
            and self.carried.debug
            and self.cycle.state in (State.IDLE, State.STARTED)
        ):
            # A live round trip whose server takes it, sent before the body (WSGIToASGI
            # has not started its response yet): it goes out around WSGIToASGI's start
            # where the app sent it, before or after its start (the TestClient reads
            # the template from it).
            carried = self.carried
            if self.cycle.state is State.IDLE:
                carried.before_start.append(message)
            else:
                carried.after_start.append(message)
        elif kind == "http.response.debug" and self.carried is not None and self.carried.bare:
            self.relay = self.carried.debug  # later in a bare round trip: in order
        elif kind in ("http.response.early_hint", "http.response.debug", "http.response.push"):
            # Not advertised, and WSGI cannot carry them: dropped (EXT-08). For push the
            # spec says so itself: a server incapable of Server Push "must drop them"
            # (ASGI-www §HTTP). An app may still send one when it believes the server
            # can (Starlette's send_push_promise once the extension is in its scope).
            logger.debug("bridgeway: ignored %s (not advertised; WSGI cannot send it)", kind)
        else:
            raise ValueError(f"unknown ASGI message type {kind!r} for an http scope")

    def _pathsend(self, message: Message) -> None:
        """``http.response.pathsend`` (EXT-06): the file becomes the whole body, handed
        to the server's ``wsgi.file_wrapper`` (sendfile under gunicorn)."""
        self.cycle.check(PATHSEND)  # taken below, once the file is open
        path = message["path"]
        if not isinstance(path, str):
            raise ValueError(f"http.response.pathsend: path must be a str, not {path!r}")
        if not os.path.isabs(path):
            # The extension asks for an absolute path, but Starlette's FileResponse sends
            # the path it was given (FileResponse("image.png")), and native servers that
            # do not advertise pathsend stream that file from the working directory. The
            # app and this adapter share the process and its working directory, so the
            # path means here exactly what it meant to the app.
            path = os.path.abspath(path)
        file = open(path, "rb")  # noqa: SIM115 - closed by the WSGI server through close()
        self.cycle.advance(PATHSEND)
        self.file = file
        self.chunk = b""
        self.final = True  # the cycle is DONE
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)
        self._wake()

    def _start(self, message: Message) -> None:
        # Validate the whole message into locals first and only then advance the cycle
        # and keep the result: a rejected start (A2W-SEND-03) must leave neither a
        # STARTED state (the app's corrected start would be "a second start") nor
        # half its headers behind.
        status = message["status"]
        # Any three-digit int, as uvicorn (httptools) sends it, a 1xx as the final
        # status too (Response(status_code=123)); status_line() gives it PEP 3333's
        # "NNN reason" form, the standard phrase or "Unknown". An int subclass is an
        # int (http.HTTPStatus, as the MCP SDK and Starlette users send it; uvicorn and
        # hypercorn serve it), taken as its plain value; a bool is not a status.
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
            raise ValueError(
                f"http.response.start: status must be an int in 100-999, got {status!r}"
            )
        status = int(status)
        headers: list[tuple[str, str]] = []
        length = None
        pairs = ASGI_PAIRS
        for header in message.get("headers", ()):
            try:
                pair = pairs.get(header)
            except TypeError:  # unhashable (a list as a pair): checked below
                pair = None
            if pair is not None:  # a plain header seen before, checked then
                headers.append(pair)
                continue
            name, value = header
            text, kind = asgi_header_name(name)
            if not (kind == NAME_CONTENT_LENGTH and type(value) is bytes and value.isdigit()):
                check_asgi_value(name, value)  # (ASCII digits are a valid value)
            if kind == NAME_CONTENT_LENGTH:
                if length is not None:
                    if value.strip(b" \t") != length:
                        raise ValueError("http.response.start: conflicting content-length headers")
                    continue
                length = value.strip(b" \t")
                if parse_content_length(length) is None:
                    raise ValueError(f"http.response.start: invalid content-length {value!r}")
                continue  # added once, below (it used to be sent twice)
            if kind == NAME_HOP_BY_HOP:
                continue  # the WSGI server frames the message (A2W-SEND-02)
            pair = (text, value.decode("latin-1"))
            remember_asgi_pair(header, pair)
            headers.append(pair)
        self.cycle.advance(START)
        if length is not None:
            headers.append(("Content-Length", length.decode()))
            self.length = self.left = int(length)
        self.headers = headers
        self.trailers = bool(message.get("trailers", False))
        self.status = status
        trip = self.trip
        if trip is not None and trip.response is not None:  # a WSGIToASGI inside sent one
            self.verbatim = trip.verbatim(message)
        carried = self.carried
        if carried is not None:
            if self.trailers and carried.trailers_ok:
                carried.announce_trailers()  # WSGIToASGI's start says so too
            if carried.direct:
                # The start goes out before the body (_a2w.request._first_response)
                # if the app awaits something first (a streaming body's first item):
                # checked once the app's current step is over, so that a body sent
                # right after the start still goes out with it, in one message.
                self.loop.call_soon(self._start_early, self.ready)

    async def receive(self) -> Message:
        if self.body_done:
            if not (self.final or self.closed):
                await self._wait_gone()
            return DISCONNECT
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
            # May block on the socket: a helper thread reads ahead (see _a2w.body).
            if self.reader is None:
                self.reader = BodyReader(
                    self.loop,
                    stream,
                    left,
                    self.adapter.chunk_size,
                    start=self.ploop.start_helper,
                    by_message=stream.read_message if self.by_message else None,
                )
            item = await self.reader.next()
            if item is GONE:
                self.body_done = True
                return DISCONNECT
            data, more = item
            self.body_done = not more
            return {"type": "http.request", "body": data, "more_body": more}
        # In memory (waitress, tests) or a temp file (waitress): never blocks.
        size = read_size(left, self.adapter.chunk_size)
        return self._body_message(read_or_none(stream, size), left)

    def _body_message(self, data: bytes | None, left: int | None) -> Message:
        """The ``http.request`` message for what a read of ``wsgi.input`` gave (None:
        the read failed), or ``http.disconnect`` when the body ended early."""
        step = body_read(left, data)
        if step is None:  # the read failed, or b"" before the declared length
            self.body_done = True
            return DISCONNECT
        self.body_left, more = step
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
