"""The loop side of one ASGIToWSGI request: the app's task and the steps that run it.

The WSGI side (``_a2w.iteration``, ``_a2w.first_response``) never runs the app itself:
it hands the request's loop a *step* (``PooledLoop.run``), a function run on the loop
that returns a future, and the loop runs until that future is done. ``_start_step``
starts the app's task; ``_next_step`` releases the app's parked ``send()`` (the chunk
was pulled: backpressure); ``_early_step`` follows an early start; ``_settle_step``
lets the app run a few loop steps after its final body. The app's ``send()`` and the
end of ``_main`` complete the step's future (``ready``, through ``_wake``).

Where the app's exception goes is decided in ``_main``: before the final body it is
the response's error (a 500, or raised from the iteration); after it, raised from the
iteration when ``propagate_exceptions`` asks for it, else logged; after the client
left, a disconnect is not an application error (A2W-SEND-08).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .._context import crossing_context, round_trip
from .._round_trip import RoundTrip
from .._types import Environ, StartResponse
from .channel import AppChannel

if TYPE_CHECKING:
    from .adapter import Adapter

logger = logging.getLogger("bridgeway")


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


class Task(AppChannel):
    __slots__ = (
        "context",
        "exhausted",
        "late",
        "released",
        "scope",
        "settler",
        "start_response",
        "task",
        "task_done",
        "yielded",
    )

    def __init__(self, adapter: Adapter, environ: Environ, start_response: StartResponse) -> None:
        super().__init__(adapter, environ)
        # The calling WSGI thread's context, taken at the call: what WSGI middleware set
        # (a tracing span, log bindings) is visible to the app (A2W-LIFE-09), less
        # sniffio's "async library" marker, which would name the wrong loop (_context).
        self.context = crossing_context()
        # A WSGIToASGI inside the app gives its WSGI app this environ's extension keys,
        # and its WSGI app's response reaches the server as that app wrote it.
        trip = self.trip = RoundTrip(environ)
        self.context.run(round_trip.set, trip)
        self.start_response = start_response
        self.scope: dict[str, Any]
        self.yielded = False  # start_response was called and bytes may be out
        self.exhausted = False
        self.task_done = False
        self.released = False  # the WSGI side no longer looks at this request's errors
        # Raised from close() (see _a2w.first_response).
        self.late: BaseException | None = None

    def _start_step(self) -> asyncio.Future[None]:
        self.ready = self.loop.create_future()
        self.task = self.ploop.spawn(self._main(), self.context)
        return self.ready

    def _next_step(self) -> asyncio.Future[None]:
        ready = self.ready = self.loop.create_future()
        pulled, self.pulled = self.pulled, None
        if pulled is not None and not pulled.done():
            pulled.set_result(None)
        elif self.task_done:
            ready.set_result(None)
        return ready

    def _early_step(self) -> asyncio.Future[None]:
        """After an early start (``_EarlyStarted``): done at once when the app has sent
        its next event already (a chunk it now waits on, its final body or file, an
        error, its end), else when it does (``send()``, ``_main`` wake this future)."""
        ready = self.ready = self.loop.create_future()
        if self.chunk is not None or self.final or self.error is not None or self.task_done:
            ready.set_result(None)
        return ready

    def _settle_step(self) -> asyncio.Future[None]:
        ready = self.ready = self.loop.create_future()

        async def steps() -> None:
            # Always wake at the end: in thread mode the task may have ended (and woken
            # the previous ready future) between the WSGI thread's check of task_done
            # and this step, and nothing else would complete this one.
            for _ in range(4):
                if self.task_done:
                    break
                await asyncio.sleep(0)
            self._wake()

        self.settler = self.loop.create_task(steps())
        return ready

    async def _main(self) -> None:
        try:
            await self.adapter.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError as exc:
            if self.final or self.closed or self.released:
                logger.debug("ASGIToWSGI: the ASGI app was cancelled after the client left")
            else:
                # bridgeway cancels the task only once the response is over or the client
                # has gone: before that, CancelledError is the app's own exception (one it
                # raised, or an inner cancellation it let escape) and surfaces as any
                # other would (A2W-SEND-05), not as "returned without a response".
                self.error = exc
        except BaseException as exc:
            if self.closed and _caused_by_disconnect(exc):
                # Our own ClientDisconnected, raised after the client left, or the app's
                # translation of it (Starlette raises ClientDisconnect from it): not an
                # application error (A2W-SEND-08).
                logger.debug("ASGIToWSGI: the ASGI app ended after the client left: %r", exc)
            elif self.final and not self.released and self.adapter.propagate_exceptions:
                self.error = exc  # raised from the iterator once the body is out
            elif self.final or self.closed:
                logger.error("ASGIToWSGI: the ASGI app raised after its response", exc_info=exc)
            else:
                self.error = exc
        finally:
            self.task_done = True
            if self.carried is not None:
                self.carried.finish()  # no trailers will follow
            self._wake()
