"""What a loop pool of ASGIToWSGI holds, and how it is shut down.

``LoopPool`` (``_a2w.pool``) builds on this: it checks loops out and in, and makes
them. This part holds the loops and the counters (``PoolBase``), drops what a ``fork()``
inherited (``forget``) and shuts the loops down at the adapter's or the interpreter's
exit (``_a2w.exits``).

Shutdown: idle loops get their lifespan shutdown at once and share one deadline; loops
still serving a request (the server may stop between writing the last chunk and calling
``close()``) are closed by ``checkin()`` when they come back, and shutdown waits for
them, bounded. In **shared** mode the one loop is shut down after its requests (bounded),
as an ASGI server does before its lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._types import ASGIApp
from . import exits
from .lifespan import LifespanMode
from .loops import BUSY_WAIT, LoopMode, PooledLoop

if TYPE_CHECKING:
    from .greenlets import GreenletLoop

logger = logging.getLogger("bridgeway")


class PoolBase:
    """The loops of one ASGIToWSGI adapter in this process, and their shutdown."""

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
        exits.register(self)

    def forget(self) -> None:
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
        self._close_idle(idle, limit, deadline)
        with self._lock:
            for ploop in idle:
                self._all.remove(ploop)
        self._wait_for_busy(busy, deadline)

    def _close_idle(self, idle: list[PooledLoop], limit: float, deadline: float) -> None:
        """Every loop gets lifespan.shutdown at once and their waits share one deadline:
        closed one after another, a task left running on the first loop would hold the
        next loops' shutdown back by the whole timeout each (A2W-LIFE-07), past the grace
        period after which a server kills its worker."""
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

    def _wait_for_busy(self, busy: list[PooledLoop], deadline: float) -> None:
        """Loops still serving a request (the server may stop between writing the last
        chunk and calling close()) or finishing background work are closed by checkin()
        when they come back; wait for that, bounded, so that their lifespan shutdown
        runs before the interpreter goes on with its exit."""
        with self._returned:
            waited = self._returned.wait_for(
                lambda: not any(p in self._all for p in busy),
                max(0.0, deadline - time.monotonic())
                if any(p.driver is not None for p in busy)  # background work: its timeout
                else max(0.0, min(deadline - time.monotonic(), BUSY_WAIT)),
            )
        if not waited:
            left = [p for p in busy if p in self._all]
            logger.warning(
                "ASGIToWSGI: %d event loop(s) were still serving a request at shutdown;"
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
            waited = self._returned.wait_for(lambda: self._users <= 0, min(limit, BUSY_WAIT))
            running = self._users
        if not waited:
            logger.warning(
                "ASGIToWSGI: %d request(s) were still running on the shared event loop at"
                " shutdown; the lifespan shutdown runs now",
                running,
            )
        ploop.close(limit)
        with self._lock:
            if ploop in self._all:
                self._all.remove(ploop)
