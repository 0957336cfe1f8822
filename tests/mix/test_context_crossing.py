"""The context each adapter hands to the app, beside the native references (issue 13).

Found by running Starlette's own suite through ``WSGIToASGI(ASGIToWSGI(app))`` on trio
(scripts/framework_suites): anyio marks the running async library in a context
variable (sniffio's ``current_async_library_cvar``), and a copy of the caller's context
carried that mark to a place where no such library runs: a WSGIToASGI worker thread,
or an ASGIToWSGI task on an asyncio loop. Everything else in the context still crosses
(A2W-LIFE-09 and its W2A twin are tested in test_a2w_context.py).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable

import anyio
import anyio.lowlevel
import anyio.to_thread
import sniffio
from werkzeug.test import Client

from bridgeway import WSGIToASGI
from bridgeway._types import Environ, Receive, Scope, Send, StartResponse
from tests.support.a2w_driver import call as wsgi_call
from tests.support.a2w_driver import serving
from tests.support.w2a_driver import call

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


async def _in_a_fresh_loop() -> str:
    await anyio.lowlevel.checkpoint()
    return sniffio.current_async_library()


def calls_anyio_run(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """A sync view that runs async code the usual way, in a loop of its own."""
    library = anyio.run(_in_a_fresh_loop)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{library} {REQUEST_ID.get()}".encode()]


async def test_w2a_worker_thread_runs_no_async_library() -> None:
    """Natively (a WSGI server's thread) ``anyio.run()`` works in a view; under
    WSGIToASGI on asyncio or trio it must too, while the request's other context
    variables still reach the thread."""
    native = await anyio.to_thread.run_sync(Client(calls_anyio_run).get, "/")
    assert (native.status_code, native.data) == (200, b"asyncio -")
    REQUEST_ID.set("r1")
    peer = await call(WSGIToASGI(calls_anyio_run))
    assert (peer.status, peer.body) == (200, b"asyncio r1")


async def offloads(scope: Scope, receive: Receive, send: Send) -> None:
    """What Starlette does for a sync endpoint: ``anyio.to_thread.run_sync``."""
    assert scope["type"] == "http"
    library = sniffio.current_async_library()
    offloaded = await anyio.to_thread.run_sync(REQUEST_ID.get)
    body = f"{library} {offloaded}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_a2w_task_sees_its_own_loop_whatever_the_caller_ran() -> None:
    """A WSGI server thread whose context carries anyio's mark (as a WSGIToASGI worker
    thread under trio did): the app's task still runs on asyncio and anyio must see
    asyncio there, as a native asyncio server's app does; the caller's other context
    variables still reach the app."""

    async def natively() -> bytes:
        sent: list[bytes] = []

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.body":
                sent.append(message["body"])  # type: ignore[arg-type]

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        await offloads({"type": "http"}, receive, send)  # type: ignore[arg-type]
        return b"".join(sent)

    assert anyio.run(natively, backend="asyncio") == b"asyncio -"

    caller = contextvars.copy_context()
    caller.run(REQUEST_ID.set, "r2")
    caller.run(sniffio.current_async_library_cvar.set, "trio")
    with serving(offloads, lifespan="off") as adapter:
        result = caller.run(wsgi_call, adapter)
    assert (result.status, result.body) == ("200 OK", b"asyncio r2")
    # The caller's own context is left as it was.
    assert caller[sniffio.current_async_library_cvar] == "trio"


async def test_double_bridge_runs_a_thread_offloading_app_on_both_backends() -> None:
    """The case the framework suites found: ``WSGIToASGI(ASGIToWSGI(app))`` with an app
    that offloads to a thread answers as the app does natively: called in process, the
    app runs on the caller's loop (the in-process round trip), trio's or asyncio's."""
    native = await call(offloads)
    with serving(offloads, lifespan="off") as inner:
        peer = await call(WSGIToASGI(inner))
    assert (peer.status, peer.body) == (native.status, native.body)
    assert native.body == f"{sniffio.current_async_library()} -".encode()
