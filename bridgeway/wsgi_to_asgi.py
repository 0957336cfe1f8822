"""``WSGIToASGI``: serve a PEP 3333 app from any ASGI 3 server (asyncio or trio).

The adapter object only holds settings and the per-process worker pool; each HTTP
request gets its own ``HTTPCycle`` (see ``_w2a.cycle`` for the theory of operation).
``lifespan`` is answered (ASGI-life), ``websocket`` is refused before the handshake,
and any other scope type raises (ASGI-main §Protocol Specifications: "actively reject").
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import anyio
import anyio.to_thread

from ._protocol import FileWrapper
from ._types import Message, Receive, Scope, Send, WSGIApp
from ._w2a.cycle import HTTPCycle
from ._w2a.workers import WorkerPool, process_id
from ._w2a.wsgi_extras import ErrorStream
from .asgi_to_wsgi import ASGIToWSGI
from .errors import ServerContractError

logger = logging.getLogger("bridgeway")

DEFAULT_MAX_THREADS = 40


class WSGIToASGI:
    """Wrap a WSGI application as an ASGI 3 application.

    :param app: the WSGI callable (Flask, Django's ``WSGIHandler``, Pyramid, ...).
    :param max_threads: how many requests may run the WSGI app at once (the size of the
        worker pool, default 40, as anyio's default thread limit). Requests over the
        limit wait in FIFO order; they are never refused.
    :param multiprocess: the value of ``wsgi.multiprocess`` (the adapter cannot know how
        many processes the server runs).
    :param keep_underscore_headers: pass request headers whose names contain ``_``
        (dropped by default, as nginx and gunicorn do, so they cannot spoof their
        ``-`` twins).
    :param max_header_repeats: answer 400 when one header name repeats more often
        (None: no cap).
    :param strict_headers: reject hop-by-hop response headers in ``start_response``
        instead of dropping them with a warning.
    :param watch_disconnect: watch ``receive()`` for ``http.disconnect`` while a
        response streams, so an endless generator stops when the client leaves.
    :param cancel_timeout: how long a cancelled request waits for the app's thread to
        reach a chunk boundary and close the iterable.
    :param propagate_exceptions: let an exception of the WSGI app (from the app call,
        its iteration, ``write()`` or ``close()``) propagate out of the ASGI call, the
        same object with its traceback, as a2wsgi and Starlette's middleware do: the
        server logs it once and answers 500 (nothing was sent yet) or aborts the
        response (it had started), and outer ASGI middleware and test clients see it
        (W2A-RESP-12, the default). False: bridgeway answers 500 or aborts the
        response itself, logs the traceback and never raises.
    :param close_after_send: False (the default): call the iterable's ``close()`` in
        the app's thread as soon as the iteration is over and its last chunk was handed
        to the event loop, without waiting for that ``send()`` to return
        (W2A-RESP-13). ``close()`` still runs exactly once, in the app's thread, never
        delays the response, and the ASGI call returns only after it returned. True:
        the strict order, ``close()`` only once the last ``send()`` has returned, for a
        ``close()`` that must not run before the server has taken the last bytes; it
        costs the app's thread one wait for the event loop per request (see the
        benchmark report).
    :param on_startup: / :param on_shutdown: sync callables run in a worker thread at
        ``lifespan.startup`` / ``lifespan.shutdown``.
    :param shutdown_timeout: at ``lifespan.shutdown``, how long to wait for requests
        still running.
    :param errors: the ``wsgi.errors`` stream: a text stream with ``write``, ``flush``
        and ``writelines``. None (default): each line goes to the
        ``bridgeway.wsgi.errors`` logger at ERROR level (or, for a request served
        inside an ``ASGIToWSGI`` request of this process, to that WSGI server's own
        ``wsgi.errors``).

    IDs such as W2A-ENV-18 name items of the behaviour checklist, docs/checklist.md.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        max_threads: int = DEFAULT_MAX_THREADS,
        multiprocess: bool = False,
        keep_underscore_headers: bool = False,
        max_header_repeats: int | None = 100,
        strict_headers: bool = False,
        watch_disconnect: bool = True,
        cancel_timeout: float = 10.0,
        propagate_exceptions: bool = True,
        close_after_send: bool = False,
        on_startup: Sequence[Callable[[], object]] = (),
        on_shutdown: Sequence[Callable[[], object]] = (),
        shutdown_timeout: float = 30.0,
        errors: Any = None,
    ) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self.app = app
        self.max_threads = max_threads
        self.multiprocess = multiprocess
        self.keep_underscore_headers = keep_underscore_headers
        self.max_header_repeats = max_header_repeats
        self.strict_headers = strict_headers
        self.watch_disconnect = watch_disconnect
        self.cancel_timeout = cancel_timeout
        self.propagate_exceptions = propagate_exceptions
        self.close_after_send = close_after_send
        self.on_startup = tuple(on_startup)
        self.on_shutdown = tuple(on_shutdown)
        self.shutdown_timeout = shutdown_timeout
        self.errors = errors if errors is not None else ErrorStream()
        # Without an explicit stream, a request served inside an ASGIToWSGI request of
        # this process writes to that WSGI server's wsgi.errors (_w2a.inherit.inherit_upstream).
        self.errors_from_server = errors is None
        self.file_wrapper = FileWrapper
        # Nothing that involves threads is made here: the pool is per process, made on
        # first use, so a pre-fork master never hands dead threads to its workers.
        self._pool: WorkerPool | None = None
        self._pool_lock = threading.Lock()

    @property
    def asgi_inside(self) -> bool:
        """The WSGI app is a bridgeway ``ASGIToWSGI`` (a direct round trip): the ASGI
        app behind it gets the server's lifespan, websockets and requests itself."""
        return isinstance(self.app, ASGIToWSGI)

    def pool(self) -> WorkerPool:
        """The worker pool of this process (created on first use, again after fork)."""
        pool = self._pool
        if pool is None or pool.pid != process_id():
            with self._pool_lock:
                pool = self._pool
                if pool is None or pool.pid != process_id():
                    pool = self._pool = WorkerPool(self.max_threads)
        return pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await HTTPCycle(self, scope, receive, send).run()
        elif kind == "lifespan":
            inner = self.app
            if isinstance(inner, ASGIToWSGI) and inner.lifespan != "off":
                # The in-process round trip: the ASGI app behind the WSGI one gets the
                # server's lifespan itself (WSGI cannot carry it; docs/wsgi-to-asgi.md).
                await self._forward_lifespan(inner, scope, receive, send)  # (asgi_inside)
            else:
                await self._lifespan(receive, send)
        elif kind == "websocket" and isinstance(self.app, ASGIToWSGI):
            await self.app.app(scope, receive, send)  # as lifespan, above
        elif kind == "websocket":
            # A WSGI app cannot speak websocket. Closing before accepting makes the
            # server answer the handshake with 403 (ASGI-www §WebSocket Close).
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1000})
        else:
            raise ServerContractError(
                f"WSGIToASGI cannot serve ASGI scope type {kind!r}: only 'http' (and"
                " 'lifespan'; 'websocket' is refused) can reach a WSGI app"
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await _run_hooks(self.on_startup)
                except Exception as exc:
                    logger.exception("WSGIToASGI: a startup hook (on_startup) raised")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                failure = await self._shutdown()
                if failure is None:
                    await send({"type": "lifespan.shutdown.complete"})
                else:
                    await send({"type": "lifespan.shutdown.failed", "message": failure})
                return

    async def _forward_lifespan(
        self, inner: ASGIToWSGI, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Hand the server's lifespan to ``inner``'s ASGI app: its startup errors reach
        the server, its ``state`` the server's requests (and, through them, the app's:
        ``_a2w.nested``). Our own hooks run first at startup, our shutdown (waiting for
        requests still running, then the hooks) before the app's."""
        failure: list[str] = []

        async def forward_receive() -> Message:
            message = await receive()
            kind = message["type"]
            if kind == "lifespan.startup":
                await _run_hooks(self.on_startup)  # raising: the app fails its startup
            elif kind == "lifespan.shutdown":
                own = await self._shutdown()
                if own is not None:
                    failure.append(own)
            return message

        async def forward_send(message: Message) -> None:
            if failure and message["type"] == "lifespan.shutdown.complete":
                message = {"type": "lifespan.shutdown.failed", "message": failure[0]}
            await send(message)

        await inner.app(scope, forward_receive, forward_send)

    async def _shutdown(self) -> str | None:
        pool = self._pool
        if pool is not None and pool.pid == os.getpid():
            # Let requests still running finish, and their close() run (W2A-SCOPE-02).
            await anyio.to_thread.run_sync(pool.wait_idle, self.shutdown_timeout)
        failure = None
        try:
            await _run_hooks(self.on_shutdown)
        except Exception as exc:
            logger.exception("WSGIToASGI: a shutdown hook (on_shutdown) raised")
            failure = repr(exc)
        if pool is not None and pool.pid == os.getpid():
            await anyio.to_thread.run_sync(pool.shutdown, 1.0)
            self._pool = None
        return failure


async def _run_hooks(hooks: Iterable[Callable[[], object]]) -> None:
    for hook in hooks:
        await anyio.to_thread.run_sync(hook)
