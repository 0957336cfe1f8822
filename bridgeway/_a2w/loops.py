"""Event loops for ASGIToWSGI: a per-process pool, two ways of driving a loop, fork and
exit handling.

Theory of operation
-------------------
A WSGI worker thread that calls the adapter checks a loop out of the pool for the
length of one request. In the default **inline** mode the loop is run *by that very
thread*: ``PooledLoop.run(step)`` schedules nothing across threads; it calls ``step()``
(which returns an asyncio future) and runs the loop until the future is done. There is
no cross-thread hop on the hot path, and the app's ``send()`` naturally waits until the
WSGI server pulls the next chunk. Under gunicorn gthread that is one loop per thread;
under a thread-per-request server (werkzeug) loops are reused, so their number is bounded
by peak concurrency, not by the number of requests.

In **thread** mode each pooled loop runs forever in a thread of its own, so tasks the
app leaves running between requests (tickers, keep-alives) keep running; every step
then costs one hand-off to that thread.

In **shared** mode there is one loop per process, running forever in a thread of its
own (as in thread mode), and every request is a task on it, whatever the number of WSGI
threads: the app sees one lifespan per process, as under an ASGI server. That is what
an app needs whose lifespan may run only once (MCP's ``StreamableHTTPSessionManager``)
or that keeps process-wide in-memory state on its loop (sessions served by a task group
entered at startup, in-memory pub/sub). The loop is made on the first request and never
checked out exclusively; the pool counts the requests using it, so that ``shutdown()``
can wait for them (bounded) before the lifespan shutdown.

When a request's coroutine outlives its response (Starlette background tasks), the
inline loop is handed to a short-lived driver thread until the coroutine returns
(bounded by a timeout), and only then goes back to the pool; the worker thread is free
at once. Nothing is created at import or construction; a pool inherited through
``fork()`` is dropped in the child (its loops share epoll state with the parent and
must not even be closed there); ``atexit`` shuts every live loop down.

Under gevent or eventlet (every request a greenlet of one OS thread) none of this
works as is: asyncio has one running-loop slot per thread. A pool that finds threading
monkeypatched when it needs its first loop serves every request on the process's one
loop, run by a green thread (``_a2w.greenlets``); only that first-loop path pays for the
check.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import gc
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from .._lifespan_outcome import LifespanOutcome
from .._types import ASGIApp
from .lifespan import Lifespan, LifespanMode

if TYPE_CHECKING:
    from .greenlets import GreenletLoop

logger = logging.getLogger("bridgeway")

LoopMode = Literal["inline", "thread", "shared"]
Step = Callable[[], "asyncio.Future[Any]"]

_BUSY_WAIT = 5.0  # seconds shutdown() waits for loops still serving a request
_pools: weakref.WeakSet[LoopPool] = weakref.WeakSet()
_exit_hook_registered = False
_exit_lock = threading.Lock()


def _forget_inherited_pools() -> None:
    for pool in list(_pools):
        pool._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_pools)


def _register_exit_hook() -> None:
    """Shut the loops down at interpreter exit, *before* non-daemon threads are joined:
    a lifespan resource that owns such a thread (aiosqlite's connection thread, an
    executor) is only released by the lifespan shutdown, so running it from a plain
    ``atexit`` hook (which runs after that join) would hang the exit for ever.
    ``concurrent.futures`` uses the same hook for the same reason."""
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(_shutdown_all_pools)
            return
        except RuntimeError:  # the interpreter is already shutting down
            pass
    atexit.register(_shutdown_all_pools)


def _shutdown_all_pools() -> None:
    """Every pool at once: each is bounded by its own timeouts, but one after another a
    process with many adapters (one per test client) waited their sum at exit, 5 s for
    each pool whose loop was still out with a response the server never closed."""
    closers = [pool.shutdown_apart("bridgeway-asgi-exit") for pool in list(_pools)]
    for closer in closers:
        if closer is not None:
            closer.join()


def _asyncgen_count(loop: asyncio.AbstractEventLoop) -> int | None:
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

    def __init__(self, pool: LoopPool, loop: asyncio.AbstractEventLoop) -> None:
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
                logger.exception("bridgeway: internal error while finishing background work")
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
                "bridgeway: work after the response did not finish within %gs; cancelled",
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
        now = _asyncgen_count(self.loop)
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
                    "bridgeway: %d task(s) left by a request whose client went away were"
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
            logger.exception("bridgeway: error while shutting an event loop down")


class LoopPool:
    """The loops of one ASGIToWSGI adapter in this process."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        mode: LoopMode,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
        lifespan: LifespanMode,
        startup_timeout: float,
        shutdown_timeout: float,
    ) -> None:
        self.app = app
        self.mode = mode
        self.loop_factory = loop_factory or asyncio.new_event_loop
        self.lifespan_mode = lifespan
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._idle: list[PooledLoop] = []
        self._all: list[PooledLoop] = []
        self._pid = os.getpid()
        # Under gevent or eventlet: this adapter's share of the process's one loop
        # (see _a2w.greenlets); decided when the first loop is needed.
        self._green: GreenletLoop | None = None
        self._serial = False  # greenlets without patched threading: loops take turns
        self.loops_created = 0
        self.closed = False
        # Shared mode: the process's one loop, how many requests are using it, and the
        # lock under which the first request makes it (and runs its lifespan startup).
        self._shared: PooledLoop | None = None
        self._users = 0
        self._creating = threading.Lock()
        _pools.add(self)

    def _forget(self) -> None:
        # After fork: these loops belong to the parent. Closing them would unregister
        # the parent's fds from a shared epoll instance, so they are only dropped.
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._idle = []
        self._all = []
        self._green = None
        self._pid = os.getpid()
        self._shared = None
        self._users = 0
        self._creating = threading.Lock()

    def checkout(self) -> PooledLoop:
        if self._pid != os.getpid():  # forked without the at-fork hook (or an odd runtime)
            self._forget()
        if self.mode == "shared":
            return self._checkout_shared()
        with self._lock:
            ploop = self._idle.pop() if self._idle else None
            if ploop is None and self.closed:
                raise RuntimeError("ASGIToWSGI has been shut down")
        if ploop is None:
            ploop = self._new_loop()
        ploop.asyncgens_at_checkout = _asyncgen_count(ploop.loop)
        return ploop

    def _checkout_shared(self) -> PooledLoop:
        with self._lock:
            if self.closed:
                raise RuntimeError("ASGIToWSGI has been shut down")
            ploop = self._shared
            if ploop is not None:
                self._users += 1
                return ploop
        # The first requests: one makes the loop and runs the lifespan startup, the
        # others wait for it (they must not see a loop whose startup has not finished).
        with self._creating:
            with self._lock:
                if self.closed:  # shut down while this request waited for the lock
                    raise RuntimeError("ASGIToWSGI has been shut down")
                ploop = self._shared
            if ploop is None:
                ploop = self._new_loop()
            with self._lock:
                self._shared = ploop
                self._users += 1
                return ploop

    def checkin(self, ploop: PooledLoop) -> None:
        if self.mode == "shared":
            with self._lock:
                self._users -= 1
                self._returned.notify_all()
            return
        ploop.serving = None
        with self._lock:
            if ploop in self._all and not self.closed:
                self._idle.append(ploop)
                return
        if self.closed and ploop in self._all:
            # A loop that was busy when the pool shut down: close it now, and tell
            # shutdown(), which may be waiting for it. In thread mode the work after a
            # response checks its loop in from the loop's own thread, where close()
            # (which waits for that loop) would block the loop for its whole timeout.
            if ploop.thread is threading.current_thread():
                closer = threading.Thread(
                    target=self._close_returned,
                    args=(ploop,),
                    name="bridgeway-asgi-close",
                    daemon=True,
                )
                try:
                    closer.start()
                    return
                except RuntimeError:  # no new threads this late in the interpreter's exit
                    pass
            self._close_returned(ploop)

    def _close_returned(self, ploop: PooledLoop) -> None:
        if ploop.thread is not threading.current_thread():
            ploop.close(self.shutdown_timeout)
        with self._lock:
            if ploop in self._all:
                self._all.remove(ploop)
            self._returned.notify_all()

    def _new_loop(self) -> PooledLoop:
        global _exit_hook_registered
        with _exit_lock:
            if not _exit_hook_registered:
                _register_exit_hook()
                _exit_hook_registered = True
        # Never an idle loop under greenlets (the shared loop is not pooled), so every
        # request of a gevent/eventlet worker comes here, and no other server pays for
        # this check more than once per loop.
        green = self._green
        if green is not None:
            green.started.wait()
            if green is self._green:
                return green
            # Its start failed (and raised in the greenlet that made it): try anew.
        from .greenlets import TurnLoop, greenlet_library, log_once, unpatched_turn

        library = greenlet_library()
        if library is not None:
            return self._new_green_loop(library)
        turn = unpatched_turn()
        if turn is not None and self._serial:
            return self._wait_for_idle()
        loop = self.loop_factory()
        if turn is not None:
            self._serial = True
            log_once(
                "bridgeway: requests come in on greenlets, but threading is not"
                " monkeypatched: ASGIToWSGI runs one request's event loop at a time in this"
                " process (no overlap) and finishes work after the response before the"
                " response ends. Monkeypatch threading (gevent.monkey.patch_all(),"
                " eventlet.monkey_patch(), uwsgi --gevent-early-monkey-patch) to have"
                " requests overlap on one event loop"
            )
            ploop: PooledLoop = TurnLoop(self, loop, turn)
        else:
            ploop = PooledLoop(self, loop)
        # Greenlets without patched threading: inline only (a loop in a real thread
        # would wait in the patched selector, on a hub of its own that nothing runs).
        # Thread and shared mode: the loop runs in a thread of its own.
        if self.mode != "inline" and not self._serial:
            ready = threading.Event()

            def run_forever() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            ploop.thread = threading.Thread(
                target=run_forever, name="bridgeway-asgi-loop", daemon=True
            )
            ploop.thread.start()
            ready.wait()
        lifespan = Lifespan(
            self.app, loop, self.lifespan_mode, self.startup_timeout, self.shutdown_timeout
        )
        ploop.lifespan = lifespan
        if lifespan.status is LifespanOutcome.PENDING:
            ploop.run(lambda: asyncio.ensure_future(lifespan.startup(), loop=loop))
        with self._lock:
            again = lifespan.status is LifespanOutcome.FAILED and any(
                p.lifespan is not None and p.lifespan.status is LifespanOutcome.COMPLETE
                for p in self._all
            )
            self._all.append(ploop)
            self.loops_created += 1
        if again:
            logger.error(
                "bridgeway: the lifespan startup failed on a new event loop after it had"
                " succeeded on another one; an app whose lifespan can run only once per"
                " process (the MCP SDK's streamable-HTTP app) or that keeps per-process"
                " state on its loop needs ASGIToWSGI(app, loop_mode='shared')"
            )
        return ploop

    def _wait_for_idle(self) -> PooledLoop:
        """Greenlets without patched threading: one loop (one lifespan) is enough, as
        its requests take turns anyway; wait for it, sleeping green."""
        from .greenlets import green_sleep

        while True:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
                if self.closed:
                    raise RuntimeError("ASGIToWSGI has been shut down")
            green_sleep(0.001)

    def _new_green_loop(self, library: str) -> PooledLoop:
        from .greenlets import GreenletLoop, host_for

        # Published before the first switch: the greenlets that come in while this one
        # starts the loop and the lifespan wait for it (``started``) in _new_loop.
        green = self._green = GreenletLoop(self, host_for(self, library))
        try:
            green.host.start()
            lifespan = Lifespan(
                self.app,
                green.loop,
                self.lifespan_mode,
                self.startup_timeout,
                self.shutdown_timeout,
            )
            green.lifespan = lifespan
            if lifespan.status is LifespanOutcome.PENDING:
                green.run(lambda: asyncio.ensure_future(lifespan.startup(), loop=green.loop))
            self.loops_created += 1
        except BaseException:
            self._green = None
            raise
        finally:
            green.started.set()
        return green

    def shutdown_apart(self, name: str) -> threading.Thread | None:
        """``shutdown()`` in a thread of its own, started and returned; run here instead
        (None returned) when no real thread may run these loops (greenlets without
        patched ``threading``: their selector belongs to this thread's hub) or when the
        interpreter's exit allows no new thread."""
        if not self._serial:
            closer = threading.Thread(target=self.shutdown, name=name, daemon=True)
            try:
                closer.start()
                return closer
            except RuntimeError:  # no new threads this late in the interpreter's exit
                pass
        self.shutdown()
        return None

    def shutdown(self, timeout: float | None = None) -> None:
        """Shut down every idle loop (lifespan shutdown first); loops still serving a
        request are shut down when they come back."""
        if self.mode == "shared":
            self._shutdown_shared(timeout)
            return
        with self._lock:
            if self._pid != os.getpid():
                return
            self.closed = True
            idle, self._idle = self._idle, []
            busy = [p for p in self._all if p not in idle]
            green, self._green = self._green, None
        limit = self.shutdown_timeout if timeout is None else timeout
        if green is not None:
            green.close(limit)
        deadline = time.monotonic() + limit
        # Every loop gets lifespan.shutdown at once and their waits share one deadline:
        # closed one after another, a task left running on the first loop would hold
        # the next loops' shutdown back by the whole timeout each (A2W-LIFE-07), past
        # the grace period after which a server kills its worker.
        closers = []
        for ploop in idle:
            if self._serial:  # greenlets without patched threading: no real thread may
                ploop.close(max(0.0, deadline - time.monotonic()))  # run their loop
                continue
            closer = threading.Thread(
                target=ploop.close, args=(limit,), name="bridgeway-asgi-close", daemon=True
            )
            try:
                closer.start()
            except RuntimeError:  # no new threads this late in the interpreter's exit
                ploop.close(max(0.0, deadline - time.monotonic()))
            else:
                closers.append(closer)
        for closer in closers:
            # close() bounds itself by ``limit``; its lifespan shutdown by its own timeout.
            closer.join(max(0.0, deadline - time.monotonic()) + self.shutdown_timeout + 2.0)
        with self._lock:
            for ploop in idle:
                self._all.remove(ploop)
        # Loops still serving a request (the server may stop between writing the last
        # chunk and calling close()) or finishing background work are closed by
        # checkin() when they come back; wait for that, bounded, so that their lifespan
        # shutdown runs before the interpreter goes on with its exit.
        with self._returned:
            waited = self._returned.wait_for(
                lambda: not any(p in self._all for p in busy),
                max(0.0, deadline - time.monotonic())
                if any(p.driver is not None for p in busy)  # background work: its timeout
                else max(0.0, min(deadline - time.monotonic(), _BUSY_WAIT)),
            )
        if not waited:
            left = [p for p in busy if p in self._all]
            logger.warning(
                "bridgeway: %d event loop(s) were still serving a request at shutdown;"
                " their lifespan shutdown did not run (serving: %s)",
                len(left),
                ", ".join(
                    (p.serving or "?") + (" (work after the response)" if p.driver else "")
                    for p in left
                ),
            )

    def _shutdown_shared(self, timeout: float | None) -> None:
        """Shared mode: wait (bounded) for the requests still running, as an ASGI server
        does before its lifespan shutdown, then shut the loop down. The lifespan shutdown
        is what ends long-lived responses (an MCP session's GET stream); requests still
        running after it are cancelled by ``PooledLoop.close()``."""
        with self._creating, self._lock:
            if self._pid != os.getpid():
                return
            self.closed = True
            ploop, self._shared = self._shared, None
            if ploop is self._green:  # under gevent/eventlet: the process's green loop
                self._green = None
        if ploop is None:
            return
        limit = self.shutdown_timeout if timeout is None else timeout
        with self._returned:
            waited = self._returned.wait_for(lambda: self._users <= 0, min(limit, _BUSY_WAIT))
            running = self._users
        if not waited:
            logger.warning(
                "bridgeway: %d request(s) were still running on the shared event loop at"
                " shutdown; the lifespan shutdown runs now",
                running,
            )
        ploop.close(limit)
        with self._lock:
            if ploop in self._all:
                self._all.remove(ploop)
