"""ASGIToWSGI under greenlet servers: gunicorn ``-k gevent`` / ``-k eventlet``, uWSGI
``--gevent``: the loops a pool hands out there.

Theory of operation
-------------------
asyncio keeps "the running loop" per OS thread, and every greenlet of a gevent or
eventlet worker runs in one OS thread: two overlapping requests cannot each run a loop
inline ("Cannot run the event loop while another loop is running"). So when the process
is monkeypatched (``gevent.monkey.is_module_patched("threading")`` or
``eventlet.patcher.is_monkey_patched("thread")``, asked when a pool would make a new
loop, never on the hot path of an ordinary server) ASGIToWSGI runs **one event loop for
the whole process, forever, in a green thread of its own** (``_a2w.green_host``): thread
mode (see ``_a2w.loops``) with a greenlet for the thread.

- A request greenlet hands each step to the loop with ``call_soon_threadsafe`` (a byte
  on the loop's self-pipe, which the hub watches) and waits on a ``threading.Event``,
  which monkeypatching made green: every other greenlet runs meanwhile. All requests of
  the worker are tasks on that one loop, as under a native ASGI server.
- Every adapter of the process shares the loop (there is one running-loop slot per OS
  thread), each with its own lifespan on it (``GreenletLoop``): startup once per adapter
  and worker, before its first request; shutdown at worker exit, after its requests.
- A request body is read by a green thread of its own (the loop's default executor is
  shared by the whole process and has a handful of workers).

When requests come in on greenlets but ``threading`` is not patched, no green wait can
be had: inline loops take turns under one green semaphore (``TurnLoop``; what else
cannot work, in ``_a2w.green_env``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .loops import BUSY_WAIT, LoopOwner, PooledLoop, Step, asyncgen_count

if TYPE_CHECKING:
    from .green_host import LoopHost

logger = logging.getLogger("bridgeway")


class GreenletLoop(PooledLoop):
    """One adapter's share of the process's loop under greenlets: its lifespan, and the
    tasks of its requests (so that its shutdown waits for its own work only)."""

    def __init__(self, pool: LoopOwner, host: LoopHost) -> None:
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
        alive = asyncgen_count(self.loop)
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
                _, still = await asyncio.wait(mine, timeout=min(timeout, BUSY_WAIT))
                for t in still:
                    t.cancel()
                if still:
                    logger.warning(
                        "ASGIToWSGI: %d request(s) were still running at shutdown; cancelled",
                        len(still),
                    )
                    await asyncio.wait(still, timeout=1.0)
            if self.lifespan is not None:
                await self.lifespan.shutdown()

        try:
            asyncio.run_coroutine_threadsafe(retire(), self.loop).result(timeout + 10)
            self.host.release(timeout)
        except BaseException:
            logger.exception("ASGIToWSGI: error while shutting an event loop down")


class TurnLoop(PooledLoop):
    """An inline loop under greenlets whose ``threading`` is not monkeypatched: green
    waits cannot be had, so each step runs the loop in the request's greenlet, holding
    the process's turn, and a second greenlet's step waits for it (no overlap, but no
    "another loop is running" either). Work after the response finishes before the
    response ends: a driver thread would be a real thread, outside the hub."""

    def __init__(self, pool: LoopOwner, loop: asyncio.AbstractEventLoop, turn: Any) -> None:
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
