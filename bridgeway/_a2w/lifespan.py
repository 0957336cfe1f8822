"""The ASGI lifespan of one application on one event loop (ASGI-life).

ASGIToWSGI runs one lifespan per pooled loop, on that loop, before the loop's first
request: the spec ties a lifespan to an event loop ("lifespans for each thread"), and
loop-bound resources made at startup (locks, connection pools) must only be used on
their own loop. The lifespan coroutine stays suspended in ``receive()`` between
requests and gets ``lifespan.shutdown`` when the loop retires.

Outcomes of startup (``status``, a ``LifespanOutcome``): COMPLETE (startup.complete),
FAILED (startup.failed, or an exception / time-out in ``on`` mode), UNSUPPORTED (in
``auto`` mode, the app raised or returned without answering: served without lifespan,
A2W-LIFE-06); PENDING before, OFF with ``lifespan="off"``.

Not merged with ``_mix.fanout``, which speaks the same protocol to apps: this driver runs
one app on a loop ASGIToWSGI owns, started lazily before the loop's first request
and with no server lifespan to answer, in asyncio only (the pool's loops are
asyncio's); it has the ``auto``/``on``/``off`` modes and decides "does not speak
lifespan" from the app's first moves. ``_mix.fanout`` answers a server's lifespan for
several mounts at once, in the server's async library (anyio: asyncio or trio), and
folds their outcomes into the one answer the server gets. What they share is the
outcome type.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any, Literal

from .._lifespan_outcome import COMPLETE, FAILED, OFF, PENDING, UNSUPPORTED, LifespanOutcome
from .._types import ASGIApp, Message

logger = logging.getLogger("bridgeway")

LifespanMode = Literal["auto", "on", "off"]


class Lifespan:
    def __init__(
        self,
        app: ASGIApp,
        loop: asyncio.AbstractEventLoop,
        mode: LifespanMode,
        startup_timeout: float,
        shutdown_timeout: float,
    ) -> None:
        self.app = app
        self.loop = loop
        self.mode = mode
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.state: dict[str, Any] = {}
        self.status: LifespanOutcome = OFF if mode == "off" else PENDING
        self.failure: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] = loop.create_future()
        self._stop_requested: asyncio.Future[None] = loop.create_future()
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._received = 0

    # ------------------------------------------------------------- the app's side

    async def _receive(self) -> Message:
        self._received += 1
        if self._received == 1:
            return {"type": "lifespan.startup"}
        if not self._started.done():
            # A second receive() before answering startup: the app (or a middleware
            # that calls receive() for every scope) swallowed lifespan.startup.
            self._not_speaking("it called receive() again before answering lifespan.startup")
        await self._stop_requested
        return {"type": "lifespan.shutdown"}

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete" and not self._started.done():
            self.status = COMPLETE
            self._started.set_result(None)
        elif kind == "lifespan.startup.failed" and not self._started.done():
            self._fail(str(message.get("message", "")))
        elif kind == "lifespan.shutdown.complete" and not self._stopped.done():
            self._stopped.set_result(None)
        elif kind == "lifespan.shutdown.failed" and not self._stopped.done():
            if self._stop_requested.done():
                logger.error("ASGIToWSGI: lifespan shutdown failed: %s", message.get("message", ""))
            else:
                # Never asked to shut down: the coroutine is being closed because its
                # loop was abandoned (already reported by the pool's shutdown warning),
                # and Starlette reports the GeneratorExit as a failed shutdown.
                logger.debug("ASGIToWSGI: lifespan closed with its abandoned loop")
            self._stopped.set_result(None)
        else:
            if not self._started.done():
                self._not_speaking(f"it sent {kind!r} on the lifespan scope")
            raise RuntimeError(f"unexpected lifespan message {kind!r} (ASGI-life)")

    def _not_speaking(self, why: str) -> None:
        """The app does not speak lifespan but does not raise either (issue 13 point 5):
        decided at once instead of after ``startup_timeout``; ``on`` fails loudly."""
        if self.mode == "on":
            self._fail(f"the app does not speak lifespan: {why}")
            return
        self.status = UNSUPPORTED
        logger.warning(
            "ASGIToWSGI: the ASGI app does not speak lifespan (%s; rule: a second receive()"
            " before startup was answered, or any non-lifespan message, means"
            " unsupported); serving without it",
            why,
        )
        self._started.set_result(None)

    def _fail(self, why: str) -> None:
        self.status = FAILED
        self.failure = why
        logger.error("ASGIToWSGI: lifespan startup failed on this event loop: %s", why)
        if not self._started.done():
            self._started.set_result(None)

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except (asyncio.CancelledError, GeneratorExit):
            raise  # cancelled, or closed with an abandoned loop: nothing to report
        except BaseException as exc:
            if not self._started.done():
                if self.mode == "on":
                    logger.error("ASGIToWSGI: lifespan startup raised", exc_info=exc)
                    self._fail(repr(exc))
                else:
                    self._unsupported(f"it raised {exc!r}")
            elif self._stop_requested.done() and not self._stopped.done():
                logger.error("ASGIToWSGI: lifespan shutdown raised", exc_info=exc)
            elif self.status is FAILED:
                # Starlette re-raises after sending startup.failed, whose message (the
                # traceback) was already logged: log the failure once (A2W-LIFE-05).
                logger.debug("ASGIToWSGI: the lifespan task raised after startup failed")
            else:
                logger.error("ASGIToWSGI: the lifespan task raised", exc_info=exc)
        else:
            if not self._started.done():
                if self.mode == "on":
                    self._fail("the app returned without answering lifespan.startup")
                else:
                    self._unsupported("it returned without answering lifespan.startup")
        finally:
            for fut in (self._started, self._stopped):
                if not fut.done():
                    fut.set_result(None)

    def _unsupported(self, why: str) -> None:
        self.status = UNSUPPORTED
        logger.info("ASGIToWSGI: the ASGI app does not support lifespan (%s); serving without", why)

    # ------------------------------------------------------ driven from the loop

    async def startup(self) -> None:
        """Run startup to an outcome, bounded by ``startup_timeout`` (A2W-LIFE-12)."""
        if self.status is not PENDING:
            return
        # An empty context: values set during startup do not leak into requests.
        self._task = contextvars.Context().run(self.loop.create_task, self._main())
        try:
            await asyncio.wait_for(asyncio.shield(self._started), self.startup_timeout)
        except asyncio.TimeoutError:
            self._fail(f"startup did not complete within {self.startup_timeout:g}s")
            self._task.cancel()

    async def shutdown(self) -> None:
        """Send lifespan.shutdown and wait for the answer, bounded by the timeout."""
        task = self._task
        if task is not None and not task.done() and self.status is not COMPLETE:
            task.cancel()  # an app that never spoke lifespan, still waiting
            await asyncio.wait({task}, timeout=1.0)
            return
        if task is None or task.done() or self.status is not COMPLETE:
            return
        self._stop_requested.set_result(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._stopped), self.shutdown_timeout)
        except asyncio.TimeoutError:
            logger.error(
                "ASGIToWSGI: lifespan shutdown did not complete within %gs",
                self.shutdown_timeout,
            )
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)

    def request_state(self) -> dict[str, Any] | None:
        """A shallow copy of the state for one request scope (A2W-SCOPE-12)."""
        if self.status is COMPLETE:
            return dict(self.state)
        return None
