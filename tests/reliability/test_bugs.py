"""Reproductions of bridgeway bugs the reliability tests found (they failed until
fixed, and stay as regressions). Both were fixed in 9d2da5b ("ASGIToWSGI: any failure of
the server's input stream ends the body as a disconnect; start_response raising no
longer leaks the loop").

BUG-1: ``ASGIToWSGI`` hangs forever when ``wsgi.input.read()`` raises anything other
than ``OSError`` or ``ValueError``. ``_a2w.body.BodyReader._run`` catches only those two;
any other exception ends the reader thread (it is left unretrieved in an executor
future: "Future exception was never retrieved") without pushing ``GONE``, so the app's
``receive()`` waits on its waiter future forever and the WSGI worker thread never comes
back. Servers' input streams do raise other exceptions: werkzeug's ``ClientDisconnected``
is a ``BadRequest`` (an ``HTTPException``), cheroot raises ``MaxSizeExceeded``, and any
middleware-provided stream may raise anything. Expected: the request ends within a
bounded time (a disconnect to the app, or a 500/400), the error logged.

BUG-2: ``ASGIToWSGI`` leaks the request's event loop when the WSGI server's
``start_response`` raises (servers do: gunicorn raises ``InvalidHeader`` for a header
it refuses, wsgiref asserts on the status and headers, any server may raise once its
client is gone). ``Request.respond()`` lets the exception out without checking the
loop back in: every such request makes a new loop (``loops_created`` grows by one per
request), never closed (its epoll fd and self-pipe stay open; ``shutdown()`` reports it
as "still serving a request" and skips it; at GC: "ResourceWarning: unclosed event
loop"). Expected: the loop goes back to the pool (or is closed) whatever
``start_response`` does.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from bridgeway import ASGIToWSGI
from bridgeway._types import Receive, Scope, Send
from tests.support.a2w_driver import Result, make_environ, serving
from tests.support.a2w_driver import call as a2w_call


class StreamBroke(Exception):
    """Stands in for werkzeug's ClientDisconnected (a BadRequest, not an OSError)."""


class BrokenStream:
    def read(self, size: int = -1) -> bytes:
        raise StreamBroke("the server's input stream failed")


async def reads_body(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})


def test_bug1_input_read_raising_other_exception_does_not_hang() -> None:
    results: list[Result] = []
    errors: list[BaseException] = []
    adapter_box = serving(reads_body, lifespan="off")
    adapter = adapter_box.__enter__()

    def serve() -> None:
        try:
            environ = make_environ("POST", stream=BrokenStream(), content_length="10")
            results.append(a2w_call(adapter, environ, expect_error=True))
        except BaseException as exc:  # the outcome may also be an exception
            errors.append(exc)

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    worker.join(timeout=8.0)
    hung = worker.is_alive()
    if not hung:
        adapter_box.__exit__(None, None, None)
    assert not hung, "the request hung: wsgi.input.read() raised StreamBroke"
    assert results or errors


async def answers(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"x"})


def _refusing_start_response(*args: Any) -> Any:
    raise OSError("the server refused the response head")


def shutdown_closing_leaked_loops(adapter: ASGIToWSGI) -> None:
    """``adapter.shutdown()``, then (test hygiene only) close the loops it lost track of
    (BUG-2), so their GC does not turn into a ResourceWarning in some later test."""
    pool = adapter._pool
    adapter.shutdown(5.0)
    if pool is not None:
        for ploop in list(pool._all):
            if not ploop.loop.is_closed() and not ploop.loop.is_running():
                with contextlib.suppress(Exception):
                    ploop.loop.close()


def test_bug2_start_response_raising_does_not_leak_the_loop() -> None:
    adapter = ASGIToWSGI(answers, lifespan="off")
    try:
        for _ in range(3):
            with contextlib.suppress(OSError):
                adapter(make_environ(), _refusing_start_response)
        created = adapter.loops_created
    finally:
        shutdown_closing_leaked_loops(adapter)
    assert created == 1, f"{created} event loops for 3 sequential requests: leaked"
