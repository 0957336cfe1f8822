"""What one ASGIToWSGI request keeps between the app's side and the WSGI side.

The app's ``send()`` (``_a2w.channel``) and ``receive()`` (``_a2w.receive``) run on the
request's event loop; the WSGI side (``_a2w.request`` and the modules under it) runs in
the WSGI server's thread and looks at this state only while the loop is parked on a
future it handed over: ``ready`` (the app sent its next event, ended, or raised),
``pulled`` (the WSGI side took the app's non-final chunk: backpressure) and ``gone``
(the response is complete or the server closed it: ``receive()`` may answer
``http.disconnect``, A2W-RECV-06/07). ``_a2w.states`` alone decides what the app may
send next.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .._types import Environ
from ..errors import ClientDisconnected
from .states import ResponseCycle

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from .._carry import Carried
    from .._round_trip import RoundTrip
    from .adapter import Adapter
    from .body import BodyReader
    from .loops import PooledLoop


class ChannelState:
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
        # asyncio's on a loop of the pool, anyio's on the server's loop (_a2w.nested).
        self.read_lock: AbstractAsyncContextManager[Any] | None = None
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

    def _complete(self) -> None:
        """The app's final body or file is in hand: ``receive()`` may answer
        ``http.disconnect`` now (A2W-RECV-06)."""
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)

    def _signal_gone(self) -> None:
        pulled, self.pulled = self.pulled, None
        if pulled is not None and not pulled.done():
            pulled.set_exception(ClientDisconnected("the WSGI server closed the response"))
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)
