"""Thread plumbing for WSGIToASGI: a bounded worker pool and a thread-to-loop mailbox.

Why not ``anyio.to_thread.run_sync``? A WSGI request needs the worker thread and the
request task to talk *while* the app runs (every body chunk one way, every
``wsgi.input`` read the other), and ``to_thread`` would need a second task per request
to carry that traffic. Here the request task submits the app to a pool thread directly
and then serves the thread's requests itself, so the common one-chunk response costs
one wake-up of the thread and one wake-up of the loop. The pool is still bounded and
FIFO-fair (requests over the limit wait, they are not refused), works on asyncio and
trio through a small loop handle, and is created lazily per process (fork-safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("bridgeway")

Job = Callable[[], "Callable[[], None] | None"]


class LoopHandle:
    """What the pool needs of the running event loop: a thread-safe way to schedule a
    callback on it, and a one-shot waiter the loop side can await."""

    __slots__ = ("call_soon_threadsafe", "new_waiter")

    def __init__(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: the only other anyio backend is trio
            import trio

            self.call_soon_threadsafe: Callable[..., Any] = (
                trio.lowlevel.current_trio_token().run_sync_soon
            )
            self.new_waiter: Callable[[], Waiter] = _TrioWaiter
        else:
            self.call_soon_threadsafe = loop.call_soon_threadsafe
            self.new_waiter = lambda: _AsyncioWaiter(loop)


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


class Waiter:
    def set(self) -> None:
        raise NotImplementedError

    async def wait(self) -> None:
        raise NotImplementedError


class _AsyncioWaiter(Waiter):
    __slots__ = ("_fut",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._fut: asyncio.Future[None] = loop.create_future()

    def set(self) -> None:
        if not self._fut.done():
            self._fut.set_result(None)

    async def wait(self) -> None:
        await self._fut


class _TrioWaiter(Waiter):
    __slots__ = ("_event",)

    def __init__(self) -> None:
        import trio

        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


class Mailbox:
    """Items posted by a worker thread, taken in batches by the request task.

    Wake-ups are coalesced: while one wake-up of the loop is pending, further posts only
    append, so a response whose chunks and end arrive together costs one wake-up.
    """

    __slots__ = ("_handle", "_items", "_lock", "_waiter", "_wake_pending", "closed")

    def __init__(self, handle: LoopHandle) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self._items: list[Any] = []
        self._waiter: Waiter | None = None
        self._wake_pending = False
        self.closed = False

    def post(self, item: Any) -> bool:
        """Thread side. Returns False when the request task has already gone."""
        with self._lock:
            if self.closed:
                return False
            self._items.append(item)
            if self._waiter is None or self._wake_pending:
                return True
            self._wake_pending = True
        self._handle.call_soon_threadsafe(self._wake)
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
            waiter.set()

    async def take(self) -> list[Any]:
        """Loop side: wait for and return every posted item."""
        while True:
            with self._lock:
                if self._items:
                    items, self._items = self._items, []
                    return items
                waiter = self._waiter = self._handle.new_waiter()
            await waiter.wait()

    def close(self) -> list[Any]:
        """Loop side: refuse further posts; return what was left."""
        with self._lock:
            self.closed = True
            self._waiter = None
            items, self._items = self._items, []
            return items


class WorkerPool:
    """At most ``size`` daemon threads taking jobs from one FIFO queue.

    The queue is the limiter: a request over the limit waits there (it is never
    refused), and a thread that finishes a job takes the next one without going to
    sleep, so under load a request costs no thread wake-up at all. The job's return
    value, a callable or None, runs after the thread counts itself idle again, so a
    request that ends there never makes the next one start a new thread. Idle threads
    exit after ``idle_timeout`` seconds.
    """

    def __init__(self, size: int, idle_timeout: float = 10.0) -> None:
        if size < 1:
            raise ValueError("the thread limit must be at least 1")
        self.size = size
        self.idle_timeout = idle_timeout
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._all_done = threading.Condition(self._lock)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._idle = 0  # threads waiting on the queue
        self._active = 0  # jobs submitted and not finished
        self._threads: set[threading.Thread] = set()
        self._closed = False

    @property
    def busy(self) -> int:
        """Jobs running or waiting for a thread."""
        return self._active

    @property
    def thread_count(self) -> int:
        return len(self._threads)

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the WSGI worker pool has been shut down")
            self._active += 1
            spawn = self._idle == 0 and len(self._threads) < self.size
            if spawn:
                thread = threading.Thread(
                    target=self._work, name=f"bridgeway-wsgi-{len(self._threads) + 1}", daemon=True
                )
                self._threads.add(thread)
            else:
                self._idle -= self._idle > 0  # that thread is spoken for
        self._jobs.put(job)
        if spawn:
            thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        jobs = self._jobs
        try:
            while True:
                try:
                    job = jobs.get(timeout=self.idle_timeout)
                except queue.Empty:
                    with self._lock:
                        if self._idle > 0 and len(self._threads) > 0:
                            self._idle -= 1
                            self._threads.discard(me)
                            return
                    continue
                if job is None:
                    return
                after = None
                try:
                    after = job()
                except BaseException:  # jobs handle their own errors; never lose a thread
                    logger.exception("bridgeway: internal error in a WSGI worker thread")
                with self._lock:
                    self._active -= 1
                    self._idle += 1
                    if self._active == 0:
                        self._all_done.notify_all()
                if after is not None:
                    after()
                # An idle thread holds nothing of the request it served (its environ,
                # the app's iterable, the request's event loop) until its next job.
                job = after = None
        finally:
            with self._lock:
                self._threads.discard(me)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is running or queued (or ``timeout``); True if idle."""
        with self._all_done:
            return self._all_done.wait_for(lambda: self._active == 0, timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the threads once the queued jobs are done; wait up to ``timeout``."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
