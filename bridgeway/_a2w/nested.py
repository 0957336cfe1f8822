"""ASGIToWSGI's side of the in-process round trip: a request whose WSGI server is a
bridgeway WSGIToASGI of the same process, calling it from the thread it runs its WSGI
app in (``_upstream``).

Theory of operation
-------------------
The app runs as a task of the WSGIToASGI request, on the server's event loop (asyncio
or trio; ``_w2a.nested`` is that side), not on a loop of ASGIToWSGI's pool; the WSGI
side (the WSGIToASGI worker thread, blocked in this adapter's call and iteration) waits
for each step, as asgiref's ``AsyncToSync`` does when called from a ``SyncToAsync``
thread. Every step is posted through the WSGIToASGI request's mailbox and runs in its
task; the thread then sleeps on a queue until the step's future resolves.

Everything else is ``Request``'s, so a round trip keeps the bridge's semantics: the
scope is built from the environ, the app's messages are checked the same way, a
non-final chunk waits until the WSGI side pulls it (backpressure), an early
``close()`` is a disconnect, and an error before or during the body surfaces from the
WSGI call or iteration exactly as outside a round trip (docs/asgi-to-wsgi.md, "Where
an exception goes"). What differs is what the native stack does differently from a
WSGI server: the response ends at the final body without waiting for the app, which
runs on as a task of the server's request; that request's ASGI call returns only when
the app returned and raises what the app raised after its response (ASGI-www §HTTP:
the server awaits the application). The request body is read from ``wsgi.input`` in
a worker thread (``anyio.to_thread``: that stream blocks until the server's loop
delivers; while it is WSGIToASGI's own, message by message, ``_carry.carry_body``).
Lifespan state comes from the server's scope when WSGIToASGI wraps this adapter
directly (it forwards the server's lifespan to the app).

A bare round trip (``_carry.Carried.bare``: WSGIToASGI calls this adapter itself)
hands the server's ``send()`` what WSGI cannot carry in order, from the app's own
``send()``, so that the server judges it (``_a2w.forward``). The steps reach the
server's loop through ``_a2w.relay``.

What WSGI loses on the way (the server's headers and target, its body messages,
trailers, debug messages, the early start) is carried as on a loop of the pool
(``_carry``, ``Request.carry_from``): running on the server's loop carries none of it
by itself, since the scope is still built from the environ and the response still
goes through WSGI.
"""

from __future__ import annotations

import asyncio
import io
import logging
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread

from .._protocol import read_size
from .._types import Message
from .._upstream import Upstream
from ..errors import BadRequest, ClientDisconnected
from .forward import Forwarding
from .receive import read_or_none
from .relay import Future, Relay
from .request import bad_request, scope_of
from .task import _caused_by_disconnect

if TYPE_CHECKING:
    from .adapter import Adapter

logger = logging.getLogger("bridgeway")


def live_trip(adapter: Adapter, trip: object) -> Upstream | None:
    """The round trip to run ``adapter``'s app in, or None (served as outside one).
    Behind WSGI middleware the server's lifespan does not reach the app, so an adapter
    that runs its own lifespan keeps its own loops there."""
    if type(trip) is not Upstream or not trip.is_caller():
        return None
    return trip if trip.app is adapter or adapter.lifespan == "off" else None


def _read_message(stream: Any, size: int) -> tuple[bytes, bool] | None:
    try:
        return stream.read_message(size)  # type: ignore[no-any-return]
    except Exception as exc:  # the server's stream broke: for the app, the client left
        logger.debug("ASGIToWSGI: reading wsgi.input failed: %r", exc)
        return None


def _cancelled_from_outside(exc: BaseException) -> bool:
    """``exc`` is the cancellation of the server's request (not a ``CancelledError`` the
    app raised itself, which is its error like any other, as outside a round trip)."""
    cancelled = anyio.get_cancelled_exc_class()
    if not isinstance(exc, cancelled):
        return False
    if cancelled is asyncio.CancelledError:
        task = asyncio.current_task()
        # Task.cancelling() (3.11): a cancellation was requested (anyio's cancel
        # scopes request it); absent before 3.11, where the app's own is not told apart.
        cancelling = getattr(task, "cancelling", None)
        return cancelling is None or cancelling() > 0
    return True  # trio: only trio raises Cancelled


class NestedRequest(Forwarding):
    __slots__ = ("grace", "pending", "raised", "told_gone")

    def respond_in(self, trip: Upstream) -> Any:
        environ, adapter = self.environ, self.adapter
        try:
            scope = scope_of(self, environ)
        except BadRequest as exc:
            return bad_request(self.start_response, exc)
        self.host = trip.cycle  # the WSGIToASGI request this one runs in
        self.pending: Any = None  # the app's coroutine until its task starts
        self.grace: anyio.CancelScope | None = None
        self.told_gone = False
        self.raised: BaseException | None = None  # the app's own error, before its end
        self.forwarding = []  # messages waiting to be passed on (_a2w.forward)
        relay = Relay(self)
        self.ploop = cast(Any, relay)
        self.loop = cast(Any, relay)
        if trip.app is adapter:
            # WSGIToASGI forwards the server's lifespan to this app: its requests get
            # the server's state, as natively (ASGI-life §Lifespan State).
            state = trip.scope.get("state")
            if state is not None:
                scope["state"] = state
        extensions: dict[str, Any] = {"http.response.pathsend": {}}
        scope["extensions"] = extensions
        # What WSGI lost of the request, the server's body messages, the response
        # extensions its server offers and an early start (_carry), here as on a loop
        # of the pool: running on the server's loop carries none of them by itself.
        self.carry_from(trip, scope, extensions)
        if trip.app is adapter and self.carried is not None and self.carried.direct:
            self.carried.bare = True  # (carry_response made one: the round trip is direct)
        self.scope = scope
        relay.run(self._start_step)
        return self._first_response()

    # ------------------------------------------------------------- WSGI thread side

    def _first_response(self) -> Any:
        carried = self.carried
        if (
            carried is not None
            and carried.bare
            and self.task_done
            and not self.status
            and self.chunk is None
            and self.error is None
        ):
            # The app returned without sending anything: in a bare round trip its
            # server answers as natively (uvicorn its own 500 and log, a test client
            # "no response"), not ASGIToWSGI: WSGIToASGI sends nothing (_carry).
            carried.silent = True
            self.exhausted = True
            self._release()
            return []
        return super()._first_response()

    def __next__(self) -> bytes:
        data = super().__next__()
        carried = self.carried
        if carried is not None and carried.bare and self.final and self.chunk is None:
            # The app's final body: WSGIToASGI sends it as one final message, as the
            # app did, rather than more_body=True and an empty end after the next pull
            # (a server may wait for its client between the two, and the app's
            # trailers wait for both).
            carried.last = self.file is None
        return data

    def _settle(self) -> bool:
        return False  # an error after the final body leaves through the server's call

    def _wait_background(self) -> None:
        pass  # the server's call waits for the app, not the response

    def _release(self) -> None:
        if self.released:
            return
        self.released = True
        if not (self.final or self.task_done):
            # Closed early: the app is told its client is gone (A2W-RECV-07).
            self.host.post_nested(self.wsgi_gone)

    # -------------------------------------------------------------- loop side

    def _start_step(self) -> Any:
        ready = self.ready = cast(Any, Future())
        self.pending = self._main()
        self.host.spawn_nested(self)
        return ready

    def wsgi_gone(self) -> None:
        """The WSGI side is done with this response before its end."""
        self.release_forwarding(ClientDisconnected("the WSGI side closed the response"))
        if self.told_gone or self.final or self.task_done:
            return
        self.told_gone = True
        self.closed = True
        self._signal_gone()
        if self.grace is not None:
            # As outside a round trip: the app may run on for the grace period.
            self.grace.deadline = anyio.current_time() + self.adapter.disconnect_grace

    def abandon(self) -> None:
        """The server's request was cancelled before the app's task could start."""
        coro, self.pending = self.pending, None
        coro.close()
        self.error = ClientDisconnected("the request was cancelled before the ASGI app started")
        self.task_done = True
        self._wake()

    async def _main(self) -> None:
        grace = self.grace = anyio.CancelScope()
        if self.told_gone:
            grace.deadline = anyio.current_time() + self.adapter.disconnect_grace
        try:
            with grace:
                await self.adapter.app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if _cancelled_from_outside(exc):
                # The server's request was cancelled: so is the app, and the WSGI side
                # (still waiting, perhaps) learns that its client is gone.
                if not (self.final or self.closed or self.released):
                    self.error = ClientDisconnected("the request was cancelled")
                raise
            if not (self.final or self.closed or self.released):
                self.error = self.raised = exc  # the WSGI side raises it or answers 500
            elif self.closed and _caused_by_disconnect(exc):
                logger.debug("ASGIToWSGI: the ASGI app ended after the client left: %r", exc)
            elif self.adapter.propagate_exceptions:
                late = self.host._late
                if late is None:
                    late = self.host._late = []
                late.append(exc)  # raised by the server's call (_w2a.nested.pick_error)
            else:
                logger.error("ASGIToWSGI: the ASGI app raised after its response", exc_info=exc)
        finally:
            self.task_done = True
            if self.carried is not None:
                self.carried.finish()  # no trailers will follow
            # A chunk's wait the task left (cancelled in it): unlike an asyncio future,
            # ours is not cancelled with its waiter, and a later step must not take it
            # for a live one (it would wait for a wake-up that never comes).
            self.pulled = None
            self._wake()

    # receive() is _a2w.receive's, with anyio's lock and wait, and reads in a thread.

    def _new_lock(self) -> AbstractAsyncContextManager[Any]:
        return anyio.Lock()

    async def _wait_gone(self) -> None:
        gone = self.gone
        if gone is None:
            gone = self.gone = cast(Any, Future())
        await gone

    async def _read(self, left: int | None) -> Message:
        stream = self.environ["wsgi.input"]
        size = read_size(left, self.adapter.chunk_size)
        if self.by_message:
            # WSGIToASGI's own wsgi.input, read to its end message by message: the
            # app gets the server's body messages as they came (_carry.carry_body).
            item = await anyio.to_thread.run_sync(
                _read_message, stream, size, abandon_on_cancel=True
            )
            return self._item_message(item)
        if isinstance(stream, (io.BytesIO, io.BufferedRandom)):
            data = read_or_none(stream, size)
        else:
            # WSGIToASGI's wsgi.input blocks until the server's loop (this one) has the
            # bytes: read in a worker thread.
            data = await anyio.to_thread.run_sync(
                read_or_none, stream, size, abandon_on_cancel=True
            )
        return self._body_message(data, left)
