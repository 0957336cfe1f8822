"""One pooled event loop of ASGIToWSGI, and the two ways of driving it.

Theory of operation
-------------------
A WSGI worker thread that calls the adapter checks a loop out of the pool
(``_a2w.pool``) for the length of one request. In the default **inline** mode the loop
is run *by that very thread*: ``PooledLoop.run(step)`` schedules nothing across threads;
it calls ``step()`` (which returns an asyncio future) and runs the loop until the future
is done. There is no cross-thread hop on the hot path, and the app's ``send()``
naturally waits until the WSGI server pulls the next chunk. Under gunicorn gthread that
is one loop per thread; under a thread-per-request server (werkzeug) loops are reused, so
their number is bounded by peak concurrency, not by the number of requests.

In **thread** mode each pooled loop runs forever in a thread of its own, so tasks the
app leaves running between requests (tickers, keep-alives) keep running; every step
then costs one hand-off to that thread. **Shared** mode drives its one loop the same
way (see ``_a2w.pool``).

When a request's coroutine outlives its response (Starlette background tasks), the
inline loop is handed to a short-lived driver thread until the coroutine returns
(bounded by a timeout), and only then goes back to the pool; the worker thread is free
at once.

The loop knows its pool only as a ``LoopOwner`` (where it is checked back in), so that
the loop kinds built on it (``_a2w.greenlets``) and the pool that makes them import it,
never the other way round.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from .lifespan import Lifespan

logger = logging.getLogger("bridgeway")

LoopMode = Literal["inline", "thread", "shared"]
Step = Callable[[], "asyncio.Future[Any]"]

BUSY_WAIT = 5.0  # seconds shutdown() waits for loops still serving a request


class LoopOwner(Protocol):
    """What a loop sees of its pool (``_a2w.pool.LoopPool``)."""

    @property
    def mode(self) -> LoopMode: ...
    def checkin(self, ploop: PooledLoop) -> None: ...


def asyncgen_count(loop: asyncio.AbstractEventLoop) -> int | None:
    """How many async generators first iterated on ``loop`` are alive: asyncio's base
    loop keeps them in ``_asyncgens`` (for ``shutdown_asyncgens``); None for a loop
    type that does not (uvloop), which makes ``_reap`` always collect."""
    gens = getattr(loop, "_asyncgens", None)
    return None if gens is None else len(gens)


def run_until(loop: asyncio.AbstractEventLoop, awaitable: Awaitable[Any]) -> Any:
    """``loop.run_until_complete`` that tolerates stray ``loop.stop()`` calls: a
    request's ``nudge()`` may stop the loop while another step drives it."""
    fut = asyncio.ensure_future(awaitable, loop=loop)
    fut.add_done_callback(lambda _: loop.stop())
    while not fut.done():
        loop.run_forever()
    return fut.result()


class PooledLoop:
    """One event loop, its lifespan, and how it is driven."""

    def __init__(self, pool: LoopOwner, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.loop = loop
        self.lifespan: Lifespan | None = None
        self.thread: threading.Thread | None = None
        self.driver: threading.Thread | None = None  # inline mode: background hand-off
        # How many async generators were alive on the loop when the current request
        # began (None: the loop type does not say; see ``_reap``).
        self.asyncgens_at_checkout: int | None = None
        # The tasks this adapter made on the loop (requests, and the waits that finish
        # them off): what close() waits for; anything else left running is cancelled.
        self.spawned: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        # What the loop is serving ("GET /path"), for the shutdown warning; None when idle.
        self.serving: str | None = None

    def run(self, step: Step, *, nudged: bool = False) -> None:
        """Run ``step()`` on the loop and wait until the future it returns is done.

        ``nudged``: whoever completes the future also calls ``nudge()``, which stops
        the loop at the end of the very iteration that did it; run_until_complete
        would need a second iteration (a second epoll call and GIL hand-off) for its
        done callback. Requests use this; lifespan steps do not."""
        if self.thread is None:
            fut = step()
            if not fut.done():
                if nudged:
                    while not fut.done():
                        self.loop.run_forever()
                else:
                    run_until(self.loop, fut)
            return
        done = threading.Event()
        failed: list[BaseException] = []

        def on_loop() -> None:
            try:
                fut = step()
            except BaseException as exc:  # never leave the caller waiting
                failed.append(exc)
                done.set()
                raise
            self._wake_when_done(fut, done, nudged)

        self.loop.call_soon_threadsafe(on_loop)
        done.wait()
        if failed:
            raise failed[0]

    def _wake_when_done(
        self, fut: asyncio.Future[Any], done: threading.Event, nudged: bool
    ) -> None:
        """On the loop: set ``done`` (the waiting WSGI thread's event) once ``fut`` is
        done. Thread mode uses a done callback; the greenlet loop overrides it."""
        fut.add_done_callback(lambda _: done.set())

    def nudge(self, ready: asyncio.Future[Any]) -> None:
        """The request's ``ready`` future was just completed (on the loop): in inline
        mode, end this run of the loop after the current iteration."""
        if self.thread is None:
            self.loop.stop()

    def start_helper(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` (a blocking ``wsgi.input`` reader) off the loop."""
        self.loop.run_in_executor(None, fn)

    def call(self, fn: Callable[[], object]) -> None:
        """Run a plain callback on the loop (at once inline; scheduled in thread mode)."""
        if self.thread is None:
            fn()
        else:
            self.loop.call_soon_threadsafe(fn)

    def spawn(
        self, coro: Awaitable[Any], context: contextvars.Context | None = None
    ) -> asyncio.Task[Any]:
        """A task for ``coro`` in a copy of ``context`` (a request: the calling WSGI
        thread's context, taken at the call, A2W-LIFE-09), or in an empty one. The
        task's own copy keeps what the app sets from leaking back to the caller."""
        ctx = contextvars.Context() if context is None else context
        task: asyncio.Task[Any] = ctx.run(self.loop.create_task, coro)  # type: ignore[arg-type]
        self.spawned.add(task)
        return task

    def finish_in_background(
        self, task: asyncio.Task[Any], timeout: float, *, gone: bool = False
    ) -> None:
        """Let ``task`` run to completion without the calling thread, then check the
        loop back in. Tasks still running after ``timeout`` are cancelled. ``gone``:
        the server closed the response early; the async generators the request dropped
        are finalized too, within the same ``timeout`` (see ``_reap``)."""

        def wait() -> Awaitable[None]:
            return self._finish(task, timeout, gone)

        if self.thread is not None:
            self.loop.call_soon_threadsafe(
                lambda: self.spawn(wait()).add_done_callback(lambda _: self.pool.checkin(self))
            )
            return

        def drive() -> None:
            try:
                run_until(self.loop, wait())
            except BaseException:
                logger.exception("ASGIToWSGI: internal error while finishing background work")
            finally:
                self.driver = None
                self.pool.checkin(self)

        self.driver = threading.Thread(target=drive, name="bridgeway-asgi-after", daemon=True)
        self.driver.start()

    def finish_here(self, task: asyncio.Task[Any], timeout: float) -> None:
        """Run the loop in the calling thread until ``task`` is done (bounded by
        ``timeout``, then cancelled): ``wait_background=True``, for test clients."""
        self.run(lambda: asyncio.ensure_future(self._finish(task, timeout, False), loop=self.loop))

    async def _finish(self, task: asyncio.Task[Any], timeout: float, gone: bool) -> None:
        deadline = self.loop.time() + timeout
        before = asyncio.all_tasks()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            logger.warning(
                "ASGIToWSGI: work after the response did not finish within %gs; cancelled",
                timeout,
            )
            task.cancel()
            await asyncio.wait({task}, timeout=5.0)
        if gone:
            await self._reap(before, deadline)
            return
        # Let what the task's end scheduled run now, not at the loop's next request:
        # the aclose() of an async generator it dropped (a streaming body) is one.
        for _ in range(3):
            await asyncio.sleep(0)

    async def _reap(self, before: set[asyncio.Task[Any]], deadline: float) -> None:
        """Finalize what a request that lost its client left behind, before the loop
        goes back to the pool (in inline mode nothing runs it until its next request).

        Starlette's ``StreamingResponse`` never closes its body iterator when ``send()``
        raises (spec 2.4) or when it cancels the stream (below 2.4): the async generator
        is dropped at its ``yield``, and its ``finally`` runs only when asyncio's
        finalizer hook schedules ``aclose()`` on the loop. Dropped inside a reference
        cycle (anyio's task group and the exception's traceback make one), it is not
        even freed until the cyclic GC runs. So: when async generators first iterated
        during the request are still alive, collect cycles once (on this disconnect path
        only), then wait for the tasks scheduled since the request's end (the
        ``aclose()`` calls), bounded by ``deadline``."""
        await asyncio.sleep(0)  # finalizers of generators freed by refcount: scheduled
        if self.pool.mode == "shared":
            # The loop keeps running, so the finalizers run whenever the cyclic GC frees
            # the generators; a forced collection here would stall every request on it,
            # and the tasks made since are mostly other requests': nothing to wait for.
            return
        base = self.asyncgens_at_checkout
        now = asyncgen_count(self.loop)
        if base is None or now is None or now > base:
            gc.collect()
        for _ in range(2):  # call_soon_threadsafe(create_task, agen.aclose()) runs
            await asyncio.sleep(0)
        left = asyncio.all_tasks() - before
        left.discard(asyncio.current_task())
        if left:
            _, still = await asyncio.wait(left, timeout=max(0.0, deadline - self.loop.time()))
            if still:
                logger.warning(
                    "ASGIToWSGI: %d task(s) left by a request whose client went away were"
                    " still running at the end of disconnect_grace",
                    len(still),
                )

    def close(self, timeout: float) -> None:
        """Shut this loop down: lifespan shutdown, pending work, async generators,
        the default executor, then the loop itself (A2W-LIFE-07)."""
        if self.driver is not None:
            self.driver.join(timeout)

        async def retire() -> None:
            if self.lifespan is not None:
                await self.lifespan.shutdown()
            me = asyncio.current_task()
            lifespan_task = self.lifespan._task if self.lifespan is not None else None

            def leftovers() -> set[asyncio.Task[Any]]:
                return {t for t in asyncio.all_tasks() if t is not me and t is not lifespan_task}

            # Requests still running (their work after the response included) get the
            # timeout (A2W-LIFE-07). Any other task the app or a library left behind is
            # cancelled at once, as asyncio.run() does after an ASGI server's lifespan
            # shutdown: some never end by themselves (sse-starlette's shutdown watcher
            # polls for uvicorn's exit flag for ever) and would hold the exit up.
            requests = leftovers() & set(self.spawned)
            if requests:
                await asyncio.wait(requests, timeout=timeout)
            still = leftovers()
            for t in still:
                t.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
            await self.loop.shutdown_asyncgens()

        try:
            if self.thread is None:
                run_until(self.loop, retire())
                run_until(self.loop, self.loop.shutdown_default_executor())
                self.loop.close()
            else:
                fut = asyncio.run_coroutine_threadsafe(retire(), self.loop)
                fut.result(timeout + 10)
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(timeout)
                if not self.thread.is_alive():
                    # The loop's thread has left run_forever(): close the loop here, as
                    # inline mode does, or its selector and self-pipe leak (ResourceWarning).
                    run_until(self.loop, self.loop.shutdown_default_executor())
                    self.loop.close()
        except BaseException:
            logger.exception("ASGIToWSGI: error while shutting an event loop down")
