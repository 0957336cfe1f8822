"""ASGIToWSGI under greenlet servers: gunicorn ``-k gevent`` / ``-k eventlet``, uWSGI
``--gevent``.

Theory of operation
-------------------
asyncio keeps "the running loop" per OS thread, and every greenlet of a gevent or
eventlet worker runs in one OS thread: two overlapping requests cannot each run a loop
inline ("Cannot run the event loop while another loop is running"). So when the process
is monkeypatched (``gevent.monkey.is_module_patched("threading")`` or
``eventlet.patcher.is_monkey_patched("thread")``, asked when a pool would make a new
loop, never on the hot path of an ordinary server) ASGIToWSGI runs **one event loop for
the whole process, forever, in a green thread of its own**: thread mode (see ``_a2w.loops``)
with a greenlet for the thread.

- The loop waits through the patched selector (gevent's ``GeventSelector``; the stdlib
  ``SelectSelector`` over eventlet's green ``select``): while it waits for I/O or a
  timer, the loop greenlet has yielded to the hub like any other greenlet.
- A request greenlet hands each step to the loop with ``call_soon_threadsafe`` (a byte
  on the loop's self-pipe, which the hub watches) and waits on a ``threading.Event``,
  which monkeypatching made green: every other greenlet runs meanwhile. All requests of
  the worker are tasks on that one loop, as under a native ASGI server.
- Every adapter of the process shares the loop (there is one running-loop slot per OS
  thread), each with its own lifespan on it: startup once per adapter and worker, before
  its first request; shutdown at worker exit, after its requests.
- While the loop sits in its selector it gives the running-loop slot back to whoever
  had it (usually nobody): a greenlet of the same worker may run a loop of its own
  (``asyncio.run`` in a sync view, asgiref's ``async_to_sync``) meanwhile.
- A request body is read by a green thread of its own (the loop's default executor is
  shared by the whole process and has a handful of workers); a request whose client
  left has its async generators collected (the cyclic GC, at most every
  ``_GC_INTERVAL``) so a streaming body's ``finally`` runs at once.

What cannot work, each said by one error at the first request of the process: a loop
that waits outside the patched selector (``uvloop``, from ``loop_factory`` or a global
policy) would block every greenlet of the worker while it waits: asyncio's own loop is
used instead. When ``select`` is not patched (``patch_all(select=False)``) no selector
waits cooperatively: the loop polls its selector, its greenlet sleeping (green sleep)
between polls. When requests come in on greenlets but ``threading`` is not patched, no
green wait can be had: inline loops take turns under one green semaphore
(``TurnLoop``): no "another loop is running", but no overlap either.

Exit: eventlet's threading never runs ``threading._register_atexit`` hooks and uWSGI's
gevent engine runs no exit hook but ``uwsgi.atexit``: both are registered too.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import logging
import os
import selectors
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .loops import _BUSY_WAIT, PooledLoop, Step, _asyncgen_count, _shutdown_all_pools, run_until

if TYPE_CHECKING:
    from .loops import LoopPool

logger = logging.getLogger("bridgeway")

_SKIP_POLLS = 8  # a busy loop still lets the other greenlets run every 9th iteration
_GC_INTERVAL = 0.1  # seconds: disconnects closer together share one gc.collect()
_host: LoopHost | None = None


def greenlet_library() -> str | None:
    """``"gevent"`` or ``"eventlet"`` when that library monkeypatched ``threading``, else
    None. Only looks at modules already imported: importing either has side effects."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return "gevent"
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("thread"):
        return "eventlet"
    return None


_logged: set[str] = set()


def log_once(message: str) -> None:
    """An error about the environment, logged once per process (not per adapter)."""
    if message not in _logged:
        _logged.add(message)
        logger.error(message)


_turn: Any = None


def green_sleep(seconds: float) -> None:
    """The green sleep of whichever of gevent and eventlet is imported."""
    _green_sleep("gevent" if "gevent" in sys.modules else "eventlet")(seconds)


def unpatched_turn() -> Any:
    """The process's turn (a semaphore of gevent or eventlet) when the caller is a
    greenlet of theirs (not its thread's main greenlet) although ``threading`` is not
    monkeypatched (a bare ``gevent.pywsgi`` server, ``patch_all(thread=False)``, uWSGI
    ``--gevent`` without monkeypatching), else None. The one running-loop slot of the
    thread is then shared by taking turns: see ``TurnLoop``."""
    global _turn
    greenlet = sys.modules.get("greenlet")
    if greenlet is None or greenlet.getcurrent().parent is None:
        return None
    if _turn is None:
        if "gevent" in sys.modules:
            from gevent.lock import Semaphore
        elif "eventlet" in sys.modules:
            from eventlet.semaphore import Semaphore
        else:
            return None
        _turn = Semaphore()
    return _turn


def _cooperative(loop: asyncio.AbstractEventLoop, library: str) -> bool:
    """Whether ``loop`` waits through a selector that yields to the greenlet hub."""
    selector = getattr(loop, "_selector", None)
    if library == "gevent":
        return type(selector).__module__ == "gevent.selectors"
    patcher = sys.modules["eventlet.patcher"]
    return isinstance(selector, selectors.SelectSelector) and patcher.is_monkey_patched("select")


def _forget_host() -> None:
    global _host, _turn
    _host = None  # the parent's loop and green thread: not ours to close
    _turn = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_host)


class _YieldingSelector:
    """The loop's selector, giving the thread's running-loop slot and async generator
    hooks back while it waits (see the theory of operation): what was there when the
    loop greenlet was switched in is put back before it switches out, so that a loop run
    by another greenlet meanwhile neither sees ours as running nor adopts (and, at its
    end, closes) the async generators our requests start. ``sleep``: the library's
    green sleep, for a selector that would block the OS thread: it is then polled, the
    greenlet sleeping in between (0.5 to 10 ms, growing while nothing happens)."""

    def __init__(
        self,
        selector: Any,
        loop: asyncio.AbstractEventLoop,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self._selector = selector
        self._loop = loop
        self._sleep = sleep
        self._saved: asyncio.AbstractEventLoop | None = None
        self._saved_hooks: Any = (None, None)
        self._polls_skipped = 0

    def select(self, timeout: float | None = None) -> Any:
        if timeout is not None and timeout <= 0 and self._polls_skipped < _SKIP_POLLS:
            # The loop has callbacks ready and only asks what I/O is ready meanwhile:
            # nothing can be, unless the hub ran since the last select (a trip
            # through the hub, with a timer, for each). Asked every few iterations.
            self._polls_skipped += 1
            return []
        self._polls_skipped = 0
        hooks = sys.get_asyncgen_hooks()  # ours, set by run_forever()
        asyncio.events._set_running_loop(self._saved)
        sys.set_asyncgen_hooks(*self._saved_hooks)
        try:
            if self._sleep is None:
                return self._selector.select(timeout)
            return self._poll(timeout)
        finally:
            self._saved = asyncio.events._get_running_loop()
            self._saved_hooks = sys.get_asyncgen_hooks()
            asyncio.events._set_running_loop(self._loop)
            sys.set_asyncgen_hooks(*hooks)

    def _poll(self, timeout: float | None) -> Any:
        assert self._sleep is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.0005
        while True:
            events = self._selector.select(0)
            if events:
                return events
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return events
            self._sleep(pause if left is None else min(pause, left))
            pause = min(pause * 2, 0.01)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


class LoopHost:
    """The process's one event loop under greenlets and the green thread running it."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sleep: Callable[[float], object] | None
    ) -> None:
        self.loop = loop
        self.users = 0  # pools attached
        self.ready = threading.Event()  # green: monkeypatched
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, name="bridgeway-asgi-green-loop", daemon=True
        )
        self._starting = False
        self._last_gc = 0.0
        self._next_gc: asyncio.Future[None] | None = None
        selector = loop._selector  # type: ignore[attr-defined]
        loop._selector = _YieldingSelector(selector, loop, sleep)  # type: ignore[attr-defined]

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self.ready.set)
        try:
            self.loop.run_forever()
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            raise

    def start(self) -> None:
        """Start the loop's green thread (once) and wait until the loop runs."""
        if not self._starting:
            self._starting = True  # before start(), which may switch greenlets
            self.thread.start()
        self.ready.wait()
        if self.error is not None:
            raise RuntimeError("bridgeway: the event loop's green thread failed") from self.error

    async def collect(self) -> None:
        """``gc.collect()`` now, or with the next caller within ``_GC_INTERVAL``: every
        collection stops every greenlet of the worker."""
        loop = self.loop
        if self._next_gc is None:
            due = self._last_gc + _GC_INTERVAL
            if loop.time() >= due:
                gc.collect()
                self._last_gc = loop.time()
                return
            self._next_gc = loop.create_future()
            loop.call_at(due, self._collect_now)
        await asyncio.shield(self._next_gc)

    def _collect_now(self) -> None:
        gc.collect()
        self._last_gc = self.loop.time()
        fut, self._next_gc = self._next_gc, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    def release(self, timeout: float) -> None:
        """One pool less; the last one closes the loop: what is left on it is
        cancelled, then async generators, the executor and the loop are shut down."""
        global _host
        self.users -= 1
        if self.users > 0:
            return
        if _host is self:
            _host = None
        loop = self.loop

        async def retire() -> None:
            # Each adapter's close() waited for its own requests: what is left was left
            # behind (a poller such as sse-starlette's shutdown watcher never ends by
            # itself) and is cancelled at once, as in _a2w.loops and as asyncio.run() does.
            me = asyncio.current_task()
            still = {t for t in asyncio.all_tasks() if t is not me}
            for t in still:
                t.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
            await loop.shutdown_asyncgens()

        asyncio.run_coroutine_threadsafe(retire(), loop).result(timeout + 10)
        loop.call_soon_threadsafe(loop.stop)
        self.thread.join(timeout)
        if not self.thread.is_alive():
            run_until(loop, loop.shutdown_default_executor())
            loop.close()


def _green_sleep(library: str) -> Callable[[float], object]:
    return sys.modules[library].sleep  # type: ignore[no-any-return]


def _make_loop(
    factory: Callable[[], asyncio.AbstractEventLoop], library: str
) -> tuple[asyncio.AbstractEventLoop, Callable[[float], object] | None]:
    """A loop for the host, and the green sleep to poll its selector with (None: its
    selector waits cooperatively). The first request of the process logs a loop that
    cannot (see the module docstring)."""
    loop = factory()
    if _cooperative(loop, library):
        return loop, None
    name = type(loop).__name__
    if getattr(loop, "_selector", None) is None:  # uvloop: nothing to poll
        loop.close()
        loop = asyncio.SelectorEventLoop()
        if _cooperative(loop, library):
            logger.error(
                "bridgeway: under %s, a %s would block every greenlet of the worker while"
                " it waits; ASGIToWSGI runs asyncio's SelectorEventLoop instead (drop"
                " loop_factory, or uvloop.install(), to silence this)",
                library,
                name,
            )
            return loop, None
    logger.error(
        "bridgeway: under %s, the selector of a %s (%s) would block every greenlet of the"
        " worker: %s did not patch select. ASGIToWSGI polls it instead, sleeping the loop's"
        " greenlet between polls (up to 10 ms of latency, a little CPU while idle);"
        " monkeypatch select too to silence this",
        library,
        type(loop).__name__,
        type(getattr(loop, "_selector", None)).__name__,
        library,
    )
    return loop, _green_sleep(library)


def _register_exit_hooks() -> None:
    """Exit hooks on top of the pools' usual one (``threading._register_atexit``),
    which eventlet's threading never runs: a plain ``atexit`` hook, and uWSGI's
    ``uwsgi.atexit``, which its gevent loop engine runs instead of either. The later
    calls find nothing left to do."""
    atexit.register(_shutdown_all_pools)
    uwsgi: Any = sys.modules.get("uwsgi")
    if uwsgi is not None:
        previous = getattr(uwsgi, "atexit", None)

        def at_uwsgi_exit() -> None:
            _shutdown_all_pools()
            if callable(previous):
                previous()

        uwsgi.atexit = at_uwsgi_exit


def host_for(pool: LoopPool, library: str) -> LoopHost:
    """The process's loop host (made on first use, not yet started: see
    ``LoopHost.start``), with ``pool`` counted as a user."""
    global _host
    host = _host
    if host is None:
        # Made and published without a greenlet switch; started by its first user.
        host = _host = LoopHost(*_make_loop(pool.loop_factory, library))
        _register_exit_hooks()
    host.users += 1
    return host


class GreenletLoop(PooledLoop):
    """One adapter's share of the process's loop under greenlets: its lifespan, and the
    tasks of its requests (so that its shutdown waits for its own work only)."""

    def __init__(self, pool: LoopPool, host: LoopHost) -> None:
        super().__init__(pool, host.loop)
        self.host = host
        self.thread = host.thread  # thread mode: every step is handed to the loop
        self.tasks: set[asyncio.Task[Any]] = set()
        self.waiters: dict[asyncio.Future[Any], threading.Event] = {}
        self.started = threading.Event()  # green: lifespan startup has an outcome
        self.closed = False

    def spawn(self, coro: Awaitable[Any], context: Any = None) -> asyncio.Task[Any]:
        task = super().spawn(coro, context)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _wake_when_done(
        self, fut: asyncio.Future[Any], done: threading.Event, nudged: bool
    ) -> None:
        """Thread mode's hand-off (``PooledLoop.run``; ``threading`` is green here), but
        a ``nudged`` step's waiter is woken by ``nudge()`` in the very callback that
        completes the future, rather than by a done callback one loop iteration later
        (a third of the loop's iterations of a small request, each a trip through the
        hub)."""
        if fut.done():
            done.set()
        elif nudged:
            self.waiters[fut] = done
        else:
            fut.add_done_callback(lambda _: done.set())

    def nudge(self, ready: asyncio.Future[Any]) -> None:
        done = self.waiters.pop(ready, None)
        if done is not None:
            done.set()

    def start_helper(self, fn: Callable[[], None]) -> None:
        # A green thread per body reader: never queued behind other requests' readers.
        threading.Thread(target=fn, name="bridgeway-asgi-input", daemon=True).start()

    async def _reap(self, before: set[asyncio.Task[Any]], deadline: float) -> None:
        # The loop runs forever: what the request left (aclose() tasks) runs without
        # being waited for. Only the cycles holding its generators need collecting; the
        # count at checkout says nothing here (other requests share the loop).
        await asyncio.sleep(0)
        alive = _asyncgen_count(self.loop)
        if alive is None or alive > 0:
            await self.host.collect()
        for _ in range(2):
            await asyncio.sleep(0)

    def close(self, timeout: float) -> None:
        """This adapter's part: its requests and background work (bounded), then its
        lifespan shutdown; the last adapter out closes the loop."""
        if self.closed:
            return
        self.closed = True

        async def retire() -> None:
            mine = {t for t in self.tasks if not t.done()}
            if mine:
                _, still = await asyncio.wait(mine, timeout=min(timeout, _BUSY_WAIT))
                for t in still:
                    t.cancel()
                if still:
                    logger.warning(
                        "bridgeway: %d request(s) were still running at shutdown; cancelled",
                        len(still),
                    )
                    await asyncio.wait(still, timeout=1.0)
            if self.lifespan is not None:
                await self.lifespan.shutdown()

        try:
            asyncio.run_coroutine_threadsafe(retire(), self.loop).result(timeout + 10)
            self.host.release(timeout)
        except BaseException:
            logger.exception("bridgeway: error while shutting an event loop down")


class TurnLoop(PooledLoop):
    """An inline loop under greenlets whose ``threading`` is not monkeypatched: green
    waits cannot be had, so each step runs the loop in the request's greenlet, holding
    the process's turn, and a second greenlet's step waits for it (no overlap, but no
    "another loop is running" either). Work after the response finishes before the
    response ends: a driver thread would be a real thread, outside the hub."""

    def __init__(self, pool: LoopPool, loop: asyncio.AbstractEventLoop, turn: Any) -> None:
        super().__init__(pool, loop)
        self.turn = turn

    def run(self, step: Step, *, nudged: bool = False) -> None:
        with self.turn:
            super().run(step, nudged=nudged)

    def finish_in_background(
        self, task: asyncio.Task[Any], timeout: float, *, gone: bool = False
    ) -> None:
        try:
            self.run(lambda: asyncio.ensure_future(self._finish(task, timeout, gone)))
        finally:
            self.pool.checkin(self)
