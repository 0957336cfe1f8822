"""ASGIToWSGI's per-process pool of event loops: checkout and checkin, and making the
loop this process can run.

Theory of operation
-------------------
A WSGI worker thread that calls the adapter checks a loop out of the pool for the
length of one request and checks it back in after the response (or after the work that
outlived it: ``_a2w.loops``). Idle loops are reused, so their number is bounded by peak
concurrency; a new one gets its lifespan startup before its first request.

In **shared** mode there is one loop per process, running forever in a thread of its
own (as in thread mode), and every request is a task on it, whatever the number of WSGI
threads: the app sees one lifespan per process, as under an ASGI server. That is what
an app needs whose lifespan may run only once (MCP's ``StreamableHTTPSessionManager``)
or that keeps process-wide in-memory state on its loop (sessions served by a task group
entered at startup, in-memory pub/sub). The loop is made on the first request and never
checked out exclusively; the pool counts the requests using it, so that ``shutdown()``
(``_a2w.pool_base``) can wait for them (bounded) before the lifespan shutdown.

Under gevent or eventlet (every request a greenlet of one OS thread) none of this
works as is: asyncio has one running-loop slot per thread. A pool that finds threading
monkeypatched when it needs its first loop serves every request on the process's one
loop, run by a green thread (``_a2w.greenlets``); only that first-loop path pays for the
check, and only it imports the greenlet modules.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from .._lifespan_outcome import LifespanOutcome
from . import exits
from .lifespan import Lifespan
from .loops import PooledLoop, asyncgen_count
from .pool_base import PoolBase

logger = logging.getLogger("bridgeway")


class LoopPool(PoolBase):
    """The loops of one ASGIToWSGI adapter in this process: checkout and checkin."""

    def checkout(self) -> PooledLoop:
        if self._pid != os.getpid():  # forked without the at-fork hook (or an odd runtime)
            self.forget()
        if self.mode == "shared":
            return self._checkout_shared()
        with self._lock:
            ploop = self._idle.pop() if self._idle else None
            if ploop is None and self.closed:
                raise RuntimeError("ASGIToWSGI has been shut down")
        if ploop is None:
            ploop = self._new_loop()
        ploop.asyncgens_at_checkout = asyncgen_count(ploop.loop)
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
        exits.ensure_exit_hook()
        # Never an idle loop under greenlets (the shared loop is not pooled), so every
        # request of a gevent/eventlet worker comes here, and no other server pays for
        # this check more than once per loop.
        green = self._green
        if green is not None:
            green.started.wait()
            if green is self._green:
                return green
            # Its start failed (and raised in the greenlet that made it): try anew.
        from .green_env import greenlet_library, unpatched_turn

        library = greenlet_library()
        if library is not None:
            return self._new_green_loop(library)
        turn = unpatched_turn()
        if turn is not None and self._serial:
            return self._wait_for_idle()
        ploop = self._make_loop(turn)
        self._start_lifespan(ploop)
        return ploop

    def _make_loop(self, turn: Any) -> PooledLoop:
        """A new loop, running in a thread of its own unless inline; ``turn``: the
        process's turn when greenlets without patched threading call (else None)."""
        loop = self.loop_factory()
        if turn is not None:
            from .green_env import log_once
            from .greenlets import TurnLoop

            self._serial = True
            log_once(
                "ASGIToWSGI: requests come in on greenlets, but threading is not"
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
        return ploop

    def _start_lifespan(self, ploop: PooledLoop) -> None:
        """The new loop's lifespan startup, then the loop is counted in the pool."""
        loop = ploop.loop
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
                "ASGIToWSGI: the lifespan startup failed on a new event loop after it had"
                " succeeded on another one; an app whose lifespan can run only once per"
                " process (the MCP SDK's streamable-HTTP app) or that keeps per-process"
                " state on its loop needs ASGIToWSGI(app, loop_mode='shared')"
            )

    def _wait_for_idle(self) -> PooledLoop:
        """Greenlets without patched threading: one loop (one lifespan) is enough, as
        its requests take turns anyway; wait for it, sleeping green."""
        from .green_env import green_sleep

        while True:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
                if self.closed:
                    raise RuntimeError("ASGIToWSGI has been shut down")
            green_sleep(0.001)

    def _new_green_loop(self, library: str) -> PooledLoop:
        from .green_host import host_for
        from .greenlets import GreenletLoop

        # Published before the first switch: the greenlets that come in while this one
        # starts the loop and the lifespan wait for it (``started``) in _new_loop.
        green = self._green = GreenletLoop(self, host_for(self.loop_factory, library))
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
