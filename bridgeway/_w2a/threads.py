"""WSGIToASGI's thread-to-loop mailbox, and the handle of the loop it wakes.

A request's worker thread (``_w2a.workers``) posts to its request task (body chunks,
``wsgi.input`` reads) through a ``Mailbox``, and the task takes the posts in batches:
the common one-chunk response costs one wake-up of the loop. The loop is reached through
a small ``LoopHandle``, so the same mailbox works on asyncio and trio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

logger = logging.getLogger("bridgeway")


class LoopHandle:
    """What the pool needs of the running event loop: a thread-safe way to schedule a
    callback on it, and one-shot waiters the loop side can await (an asyncio future,
    awaited as it is, or a trio event)."""

    __slots__ = ("call_batched", "call_soon_threadsafe", "fire", "new_waiter", "requests", "wait")

    def __init__(self) -> None:
        self.requests = 0  # requests of this loop under way (counted by the loop side)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: the only other anyio backend is trio
            import trio

            self.call_soon_threadsafe: Callable[..., Any] = (
                trio.lowlevel.current_trio_token().run_sync_soon
            )
            self.call_batched: Callable[..., Any] = self.call_soon_threadsafe
            self.new_waiter: Callable[[], Any] = trio.Event
            self.fire: Callable[[Any], None] = trio.Event.set
            self.wait: Callable[[Any], Awaitable[Any]] = trio.Event.wait
        else:
            self.call_soon_threadsafe = loop.call_soon_threadsafe
            self.call_batched = _WakeBatch(loop.call_soon_threadsafe)
            self.new_waiter = loop.create_future
            self.fire = _resolve
            self.wait = _itself  # a future is awaited as it is: no coroutine frame

    def wake(self, callback: Callable[[], None]) -> None:
        """Schedule ``callback`` on the loop from a worker thread: directly when this is
        the loop's only request, else batched with the other requests' wake-ups."""
        if self.requests > 1:
            self.call_batched(callback)
        else:
            self.call_soon_threadsafe(callback)


class _WakeBatch:
    """``call_soon_threadsafe`` shared by the requests of one asyncio loop: while one
    hand-off to the loop is pending, later callbacks join it rather than write to the
    loop's self-pipe again (a syscall, during which the posting thread lets go of the
    GIL, and one more wake-up of the loop). Under load the callbacks of many worker
    threads then reach the loop in one go: 64 concurrent requests cost about a tenth of
    the context switches they did. A lone request calls the loop directly (it has
    nothing to share a hand-off with, and the batch costs a lock and a call more)."""

    __slots__ = ("_call", "_lock", "_pending", "_scheduled")

    def __init__(self, call: Callable[[Callable[[], None]], object]) -> None:
        self._call = call
        self._lock = threading.Lock()
        self._pending: list[Callable[[], None]] = []
        self._scheduled = False

    def __call__(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._pending.append(callback)
            if self._scheduled:
                return
            self._scheduled = True
        self._call(self._run)

    def _run(self) -> None:
        with self._lock:
            callbacks, self._pending = self._pending, []
            self._scheduled = False
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one request's failure must not lose the others' wake-ups
                logger.exception("WSGIToASGI: internal error in a wake-up of the event loop")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _itself(future: asyncio.Future[None]) -> asyncio.Future[None]:
    return future


_HANDLE_ATTR = "_bridgeway_loop_handle"


def current_handle() -> LoopHandle:
    """The handle of the running loop (made once per asyncio loop).

    Kept on the loop itself, not in a module-level ``WeakKeyDictionary``: the handle
    holds the loop (its bound ``call_soon_threadsafe``), and a weak-keyed entry whose
    value holds its key is never freed, so every loop that ever served a request stayed
    alive for the life of the process (one per test client, per ASGIToWSGI loop in a
    double bridge). Loop and handle now form a cycle the garbage collector frees."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return LoopHandle()  # trio: cheap enough to make per request
    handle: LoopHandle | None = getattr(loop, _HANDLE_ATTR, None)
    if handle is None:
        handle = LoopHandle()
        with contextlib.suppress(AttributeError):  # a loop type without attributes
            setattr(loop, _HANDLE_ATTR, handle)
    return handle


class Mailbox:
    """Items posted by a worker thread, taken in batches by the request task.

    Wake-ups are coalesced: while one wake-up of the loop is pending, further posts only
    append, so a response whose chunks and end arrive together costs one wake-up. A
    waiter is armed only right before the loop side awaits it (``ready()`` then
    ``wait()``), so while one is armed the loop cannot take what a post appends before
    that post has scheduled its wake-up (which must find the loop still running).
    """

    __slots__ = (
        "_call",
        "_fire",
        "_handle",
        "_items",
        "_lock",
        "_waiter",
        "_wake_pending",
        "closed",
    )

    def __init__(self, handle: LoopHandle) -> None:
        self._handle = handle
        self._call = handle.wake
        self._fire = handle.fire
        self._lock = threading.Lock()
        self._items: list[Any] = []
        self._waiter: Any = None
        self._wake_pending = False
        self.closed = False

    def post(self, item: Any) -> bool:
        """Thread side. Returns False when the request task has already gone."""
        return self.post_many((item,))

    def post_many(self, items: Iterable[Any]) -> bool:
        """Thread side: post items together (one wake-up at most)."""
        with self._lock:
            if self.closed:
                return False
            self._items.extend(items)
            if self._waiter is None or self._wake_pending:
                return True
            self._wake_pending = True
        self._call(self._wake)
        return True

    def amend_last(self, amend: Callable[[Any], bool]) -> bool:
        """Thread side: let ``amend`` change the last posted item if the loop has not
        taken it yet. Returns what ``amend`` returned, or False."""
        with self._lock:
            return bool(self._items) and amend(self._items[-1])

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._fire(waiter)

    def ready(self) -> list[Any]:
        """Loop side: every posted item; when there is none, a new waiter is armed and
        the caller must then await ``wait()``."""
        with self._lock:
            items = self._items
            if items:
                self._items = []
                return items
            self._waiter = self._handle.new_waiter()
            return items

    def wait(self) -> Awaitable[Any]:
        """Loop side: what to await after ``ready()`` returned nothing."""
        return self._handle.wait(self._waiter)

    async def take(self) -> list[Any]:
        """Loop side: wait for and return every posted item."""
        while True:
            items = self.ready()
            if items:
                return items
            await self.wait()

    def close(self) -> list[Any]:
        """Loop side: refuse further posts; return what was left."""
        with self._lock:
            self.closed = True
            self._waiter = None
            items, self._items = self._items, []
            return items
