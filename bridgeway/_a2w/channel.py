"""The app's ``send()`` in one ASGIToWSGI request, one handler per message type.

``send()`` checks every message against the response cycle (``_a2w.states``), validates
start messages before keeping anything (A2W-SEND-03, ``_a2w.start``), enforces the
app's ``Content-Length`` (A2W-SEND-10), and parks a non-final chunk until the WSGI
server pulls it (backpressure). A body chunk is the hot path: ``send()`` tests for it
first and ``_body`` handles it in one plain call, the rare turns (a cut at
Content-Length, a short body, the final body) in calls of their own; every other type
goes through ``HANDLERS``. ``receive()`` is ``_a2w.receive``'s; ``Request``
(``_a2w.request``) adds the WSGI side.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from .._protocol import NO_BODY_STATUSES
from .._types import Message
from ..errors import ClientDisconnected, ProtocolError
from .receive import Receiving
from .start import parse_start
from .states import (
    BODY,
    BODY_END,
    CUT,
    EXCESS,
    PATHSEND,
    SHORT_BODY,
    START,
    TRAILERS,
    State,
)

logger = logging.getLogger("bridgeway")

NO_BODY_STATUS = NO_BODY_STATUSES  # (204, 304); the name used here and in _a2w.request

# A live round trip's server took it before the body: it goes out around WSGIToASGI's start.
_BEFORE_BODY = (State.IDLE, State.STARTED)


def as_bytes(body: object) -> bytes:
    """Any buffer, as uvicorn writes it (a memoryview, a typed array view, a bytearray):
    copied, since the app may reuse it once send() returns; a typed view gives its raw
    bytes."""
    try:
        return memoryview(body).tobytes()  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"http.response.body: body must be bytes-like, not {type(body).__name__}"
        ) from None


class AppChannel(Receiving):
    __slots__ = ()

    async def send(self, message: Message) -> None:
        if self.closed and not self._trailers_after_close(message):
            raise ClientDisconnected("the WSGI server closed the response; the client is gone")
        kind = message["type"]
        if kind == "http.response.body":
            pulled = self._body(message)
            if pulled is None:
                return
            try:
                await pulled
            finally:
                # The future may hold our ClientDisconnected, whose traceback holds this
                # frame: without this the app's frames (and the async generator its
                # streaming body was iterating) form a cycle only the GC frees.
                del pulled
            return
        handler = HANDLERS.get(kind)
        if handler is None:
            raise ValueError(f"unknown ASGI message type {kind!r} for an http scope")
        handler(self, message)

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

    # ------------------------------------------------------------ http.response.body

    def _body(self, message: Message) -> asyncio.Future[None] | None:
        """Take a body message; the future to wait on until the WSGI side pulls it (a
        non-final chunk), or None."""
        body = message.get("body", b"")
        if type(body) is not bytes:
            body = as_bytes(body)
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
            return None  # excess after a cut-off at Content-Length (already logged)
        no_body = self.head or self.status in NO_BODY_STATUS
        if no_body:
            body = b""  # HEAD, 204 and 304 carry no body (HTTP-04)
        left = self.left
        if left is not None:
            if len(body) > left:
                body, more = self._cut(body, left)
            left = self.left = left - len(body)
            if not more and left and not no_body:
                self._short()
                return None
        if chunk is None or no_body:
            chunk = body
        if not more:
            self._final(chunk, body)
            return None
        if not body:
            carried = self.carried
            if carried is not None and carried.bare:
                # A bare round trip: the message reaches the server's send() and
                # waits for it, as natively (the app does not run ahead of its
                # client); A2W-SEND-12 is for a WSGI server.
                self.relay = True
            return None  # an empty chunk never reaches the wire (A2W-SEND-12)
        self.chunk = chunk
        pulled = self.pulled = self.loop.create_future()
        self._wake()
        return pulled

    def _cut(self, body: bytes, left: int) -> tuple[bytes, bool]:
        logger.error(
            "ASGIToWSGI: the ASGI app sent more than its Content-Length (%d); the excess was cut",
            self.length,
        )
        self.cycle.advance(EXCESS)
        return body[:left], False

    def _short(self) -> None:
        self.cycle.advance(SHORT_BODY)
        self.error = ProtocolError(
            f"the ASGI app sent fewer bytes than its Content-Length ({self.length})"
        )
        self._wake()

    def _final(self, chunk: bytes, body: bytes) -> None:
        self.chunk = chunk if self.chunk is None else self.chunk + body
        self.final = True  # the cycle is DONE or CUT
        self._complete()
        if self.carried is not None:
            self.carried.final = True
        self._wake()

    # ----------------------------------------------------------- the other types

    def _start(self, message: Message) -> None:
        # Validated whole before the cycle advances and anything is kept (_a2w.start).
        status, headers, length = parse_start(message)
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
                # The start goes out before the body (_a2w.first_response) if the app
                # awaits something first (a streaming body's first item): checked once
                # the app's current step is over, so that a body sent right after the
                # start still goes out with it, in one message.
                self.loop.call_soon(self._start_early, self.ready)

    def _send_trailers(self, message: Message) -> None:
        if not self.trailers:
            raise ProtocolError("http.response.trailers without trailers=True in the start message")
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
        self._complete()
        self._wake()

    def _debug(self, message: Message) -> None:
        carried = self.carried
        if carried is not None and carried.debug and self.cycle.state in _BEFORE_BODY:
            # A live round trip whose server takes it, sent before the body (WSGIToASGI
            # has not started its response yet): it goes out around WSGIToASGI's start
            # where the app sent it, before or after its start (the TestClient reads
            # the template from it).
            if self.cycle.state is State.IDLE:
                carried.before_start.append(message)
            else:
                carried.after_start.append(message)
        elif carried is not None and carried.bare:
            self.relay = carried.debug  # later in a bare round trip: in order
        else:
            self._drop(message)

    def _drop(self, message: Message) -> None:
        # Not advertised, and WSGI cannot carry them: dropped (EXT-08). For push the
        # spec says so itself: a server incapable of Server Push "must drop them"
        # (ASGI-www §HTTP). An app may still send one when it believes the server
        # can (Starlette's send_push_promise once the extension is in its scope).
        logger.debug(
            "ASGIToWSGI: ignored %s (not advertised; WSGI cannot send it)", message["type"]
        )


# Every type but http.response.body (send() tests for it first): the handler, called
# with the channel and the message (AppChannel's own: a subclass changes send() itself,
# as _a2w.nested does, not these).
HANDLERS: dict[str, Callable[[AppChannel, Message], None]] = {
    "http.response.start": AppChannel._start,
    "http.response.trailers": AppChannel._send_trailers,
    "http.response.pathsend": AppChannel._pathsend,
    "http.response.debug": AppChannel._debug,
    "http.response.early_hint": AppChannel._drop,
    "http.response.push": AppChannel._drop,
}
