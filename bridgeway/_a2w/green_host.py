"""The process's one event loop under greenlets, and the green thread that runs it.

Theory of operation
-------------------
Under gevent or eventlet every adapter of the process serves its requests on one event
loop, run forever by a green thread of its own (``LoopHost``; why, in
``_a2w.greenlets``):

- The loop waits through the patched selector (gevent's ``GeventSelector``; the stdlib
  ``SelectSelector`` over eventlet's green ``select``): while it waits for I/O or a
  timer, the loop greenlet has yielded to the hub like any other greenlet. A selector
  that would block the OS thread is polled instead (``_a2w.green_env.make_loop``).
- While the loop sits in its selector it gives the running-loop slot back to whoever
  had it (usually nobody): a greenlet of the same worker may run a loop of its own
  (``asyncio.run`` in a sync view, asgiref's ``async_to_sync``) meanwhile.
- A request whose client left has its async generators collected (the cyclic GC, at
  most every ``_GC_INTERVAL``) so a streaming body's ``finally`` runs at once.
- The last adapter to shut down closes the loop (``LoopHost.release``).

Exit: eventlet's threading never runs ``threading._register_atexit`` hooks and uWSGI's
gevent engine runs no exit hook but ``uwsgi.atexit``: both are registered too.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .exits import shutdown_all_pools
from .green_env import make_loop
from .loops import run_until

_SKIP_POLLS = 8  # a busy loop still lets the other greenlets run every 9th iteration
_GC_INTERVAL = 0.1  # seconds: disconnects closer together share one gc.collect()
_host: LoopHost | None = None


def _forget_host() -> None:
    global _host
    _host = None  # the parent's loop and green thread: not ours to close


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
            raise RuntimeError("ASGIToWSGI: the event loop's green thread failed") from self.error

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
            # itself) and is cancelled at once, as in PooledLoop.close and as asyncio.run()
            # does.
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


def _register_exit_hooks() -> None:
    """Exit hooks on top of the pools' usual one (``threading._register_atexit``),
    which eventlet's threading never runs: a plain ``atexit`` hook, and uWSGI's
    ``uwsgi.atexit``, which its gevent loop engine runs instead of either. The later
    calls find nothing left to do."""
    atexit.register(shutdown_all_pools)
    uwsgi: Any = sys.modules.get("uwsgi")
    if uwsgi is not None:
        previous = getattr(uwsgi, "atexit", None)

        def at_uwsgi_exit() -> None:
            shutdown_all_pools()
            if callable(previous):
                previous()

        uwsgi.atexit = at_uwsgi_exit


def host_for(loop_factory: Callable[[], asyncio.AbstractEventLoop], library: str) -> LoopHost:
    """The process's loop host (made on first use, not yet started: see
    ``LoopHost.start``), with one more user (a pool)."""
    global _host
    host = _host
    if host is None:
        # Made and published without a greenlet switch; started by its first user.
        host = _host = LoopHost(*make_loop(loop_factory, library))
        _register_exit_hooks()
    host.users += 1
    return host
