"""``ASGIToWSGI``: serve an ASGI app (ASGI 3, or an ASGI 2 double callable) from any
PEP 3333 server. The adapter holds settings and the per-process loop pool; each request
gets its own ``Request`` (see ``_a2w.request`` and ``_a2w.loops`` for the theory of
operation)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, cast

from asgiref.compatibility import guarantee_single_callable

from ._a2w.lifespan import LifespanMode
from ._a2w.loops import LoopMode
from ._a2w.nested import NestedRequest, live_trip
from ._a2w.pool import LoopPool
from ._a2w.request import Request
from ._misuse import ASGI_SERVER_CALLED_WSGI_ADAPTER
from ._types import ASGIApp, Environ, StartResponse
from ._upstream import UPSTREAM_KEY, upstream_of


class ASGIToWSGI:
    """Wrap an ASGI application as a WSGI application.

    :param app: the ASGI app (FastAPI, Starlette, Django's ``ASGIHandler``, Quart, ...),
        or an ASGI 2 double callable; a class whose constructor takes ``(scope,
        receive, send)`` (Starlette's endpoints) is taken for an ASGI 3 app.
    :param lifespan: ``"auto"`` (default: run it, serve without it if the app does not
        support it), ``"on"`` (an app error at startup is a failure), ``"off"``.
    :param loop_mode: ``"inline"`` (default): the WSGI worker thread runs the loop
        itself, no thread hop; tasks left running between requests only advance while
        some request runs that loop. ``"thread"``: each pooled loop runs in a thread of
        its own, so such tasks keep running, at the cost of a hand-off per step.
        ``"shared"``: one loop per process, in a thread of its own, runs every request
        (as under an ASGI server): one lifespan per process, for apps whose lifespan
        may run only once or that keep per-process state on their loop (the MCP SDK's
        streamable-HTTP app); a hand-off per step, and one loop's worth of CPU. Under
        gevent or eventlet (monkeypatched threading), every mode runs one loop per
        process, in a green thread, for every request (see docs/asgi-to-wsgi.md).
    :param loop_factory: makes new event loops (for example ``uvloop.new_event_loop``).
    :param chunk_size: the most bytes read from ``wsgi.input`` per ``http.request``.
    :param disconnect_grace: after the server closed the response early, how long the
        app may run on (after ``http.disconnect``) before it is cancelled.
    :param background_timeout: how long work after the final body may run.
    :param wait_background: for tests: the work the app does after its final body
        (FastAPI ``yield`` dependencies' teardown, ``BackgroundTasks``) runs to its end
        before the response ends, in the calling thread, so a WSGI test client sees
        its side effects when its call returns. Off by default: a server's client would
        wait for that work (and waitress writes the last chunk only after ``close()``).
    :param startup_timeout: / :param shutdown_timeout: bounds for lifespan.
    :param disconnect_poll_interval: how often waitress's disconnect probe is polled.
    :param propagate_exceptions: ``True`` (default): the app's exception reaches the
        WSGI server, its middleware and test clients as a native WSGI app's would (see
        docs/asgi-to-wsgi.md for each case). ``False``: answer 500, log, never raise.

    IDs such as A2W-SEND-05 name items of the behaviour checklist, docs/checklist.md.
    """

    def __init__(
        self,
        app: Any,
        *,
        lifespan: LifespanMode = "auto",
        loop_mode: LoopMode = "inline",
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
        chunk_size: int = 65536,
        disconnect_grace: float = 5.0,
        background_timeout: float = 300.0,
        startup_timeout: float = 60.0,
        shutdown_timeout: float = 30.0,
        disconnect_poll_interval: float = 0.5,
        wait_background: bool = False,
        propagate_exceptions: bool = True,
    ) -> None:
        if lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {lifespan!r}")
        if loop_mode not in ("inline", "thread", "shared"):
            raise ValueError(f"loop_mode must be 'inline', 'thread' or 'shared', not {loop_mode!r}")
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.app: ASGIApp = single_callable(app)
        self.lifespan = lifespan
        self.loop_mode = loop_mode
        self.loop_factory = loop_factory
        self.chunk_size = chunk_size
        self.disconnect_grace = disconnect_grace
        self.background_timeout = background_timeout
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.disconnect_poll_interval = disconnect_poll_interval
        self.wait_background = wait_background
        self.propagate_exceptions = propagate_exceptions
        # No loop and no thread here: the pool is made on first use, per process.
        self._pool: LoopPool | None = None
        self._pool_lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any]

    def pool(self) -> LoopPool:
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                pool = self._pool
                if pool is None:
                    pool = self._pool = LoopPool(
                        self.app,
                        mode=self.loop_mode,
                        loop_factory=self.loop_factory,
                        lifespan=self.lifespan,
                        startup_timeout=self.startup_timeout,
                        shutdown_timeout=self.shutdown_timeout,
                    )
                    # An adapter dropped without shutdown() (one per test client, say)
                    # still shuts its loops down: lifespan shutdown, then close, off the
                    # collecting thread. Else its loops were freed open, with their
                    # lifespan task pending ("unclosed event loop" ResourceWarning).
                    # At interpreter exit the exit hook in _a2w.exits does it instead.
                    self._finalizer = weakref.finalize(self, _retire_orphan, pool)
                    self._finalizer.atexit = False
        return pool

    def __call__(
        self, environ: Environ, start_response: StartResponse | None = None, *asgi: Any
    ) -> Iterable[bytes]:
        # An ASGI server calls app(scope) (ASGI 2 auto-detection) or app(scope, receive,
        # send): the optional parameters turn Python's arity error into one that names
        # the fix, at the cost of one comparison per request.
        if start_response is None or asgi:
            raise TypeError(ASGI_SERVER_CALLED_WSGI_ADAPTER)
        trip = environ.get(UPSTREAM_KEY)
        if trip is not None:
            # Called by a WSGIToASGI of this process: the app may run on its server's
            # loop, in its server's request (the in-process round trip, _a2w.nested),
            # and what WSGI loses on the way is carried across either way (_carry).
            nested = live_trip(self, trip)
            if nested is not None:
                return NestedRequest(self, environ, start_response).respond_in(nested)  # type: ignore[no-any-return]
            request = Request(self, environ, start_response)
            return request.respond(upstream_of(environ))  # type: ignore[no-any-return]
        return Request(self, environ, start_response).respond()  # type: ignore[no-any-return]

    def shutdown(self, timeout: float | None = None) -> None:
        """Run lifespan shutdown on every live loop of this process and close them.
        Called automatically at interpreter exit; call it yourself on servers that
        recycle workers without exiting the interpreter."""
        pool = self._pool
        if pool is not None:
            self._finalizer.detach()
            pool.shutdown(timeout)
            self._pool = None

    @property
    def loops_created(self) -> int:
        """How many event loops this process has created (for tests and monitoring)."""
        return 0 if self._pool is None else self._pool.loops_created


def single_callable(app: Any) -> ASGIApp:
    """``app`` as an ASGI 3 callable. asgiref takes every class for an ASGI 2 one
    (``cls(scope)``, then ``await instance(receive, send)``), but a class whose
    constructor takes ``(scope, receive, send)`` and whose instances are awaitable
    (Starlette's ``HTTPEndpoint`` and ``WebSocketEndpoint``) is an ASGI 3 app that a
    server calls as it is (ASGI-main §Legacy Applications tells the two apart by the
    number of arguments)."""
    if inspect.isclass(app):
        try:
            params = inspect.signature(app).parameters.values()
        except (TypeError, ValueError):
            params = None
        if params is not None:
            kind = inspect.Parameter
            positional = (kind.POSITIONAL_ONLY, kind.POSITIONAL_OR_KEYWORD)
            if sum(param.kind in positional for param in params) >= 3:
                return cast(ASGIApp, app)
    return guarantee_single_callable(app)  # type: ignore[no-any-return,no-untyped-call]


def _retire_orphan(pool: LoopPool) -> None:
    """The adapter that owned ``pool`` was collected: shut its loops down in a thread of
    their own (the collection may happen on a thread that runs an event loop)."""
    pool.shutdown_apart("bridgeway-asgi-orphan")
