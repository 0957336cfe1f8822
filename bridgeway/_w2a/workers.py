"""WSGIToASGI's worker threads: a bounded pool, and the process id it checks.

Why not ``anyio.to_thread.run_sync``? A WSGI request needs the worker thread and the
request task to talk *while* the app runs (every body chunk one way, every
``wsgi.input`` read the other), and ``to_thread`` would need a second task per request
to carry that traffic. Here the request task submits the app to a pool thread directly
and then serves the thread's requests itself (through a ``_w2a.threads.Mailbox``), so
the common one-chunk response costs one wake-up of the thread and one wake-up of the
loop. The pool is still bounded and FIFO-fair (requests over the limit wait, they are
not refused) and is created lazily per process (fork-safe: ``process_id``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable

logger = logging.getLogger("bridgeway")

Job = Callable[[], "Callable[[], None] | None"]

_pid = os.getpid()


def _pid_after_fork() -> None:
    global _pid
    _pid = os.getpid()


def process_id() -> int:
    """``os.getpid()`` without its system call per request (glibc no longer caches the
    pid): kept by an at-fork hook where the runtime has them."""
    return _pid


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pid_after_fork)
else:  # pragma: no cover - a runtime without at-fork hooks asks the kernel each time
    process_id = os.getpid


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
        self.pid = process_id()
        self._lock = threading.Lock()
        self._all_done = threading.Condition(self._lock)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._idle = 0  # threads waiting on the queue
        self._active = 0  # jobs submitted and not finished
        self._threads: set[threading.Thread] = set()
        self._closed = False
        self._idle_waiters = 0  # callers of wait_idle(): only they need a notify

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
                    logger.exception("WSGIToASGI: internal error in a WSGI worker thread")
                with self._lock:
                    self._active -= 1
                    self._idle += 1
                    if self._active == 0 and self._idle_waiters:
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
            self._idle_waiters += 1
            try:
                return self._all_done.wait_for(lambda: self._active == 0, timeout)
            finally:
                self._idle_waiters -= 1

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
