"""Minimal reproductions of bridgeway bugs found while writing the examples.

All three were fixed in bridgeway (commit 47bb6a0); the tests stay as regression tests.

ASGIToWSGI-EXIT: the lifespan shutdown that ``ASGIToWSGI`` runs at interpreter exit is
registered with ``atexit``, but the interpreter joins every non-daemon thread *before*
it runs ``atexit`` hooks. A lifespan resource owning a non-daemon thread (aiosqlite's
connection thread does; so do thread-pool executors and several DB drivers) then keeps
the process alive for ever: the shutdown that would close it never runs. Seen as the
fastapi_on_wsgi example's gunicorn worker never exiting after SIGTERM (the master
SIGKILLs it after graceful_timeout, and the lifespan shutdown is lost). The fix runs the
exit hook through ``threading._register_atexit`` (what ``concurrent.futures`` does),
before the join.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import anyio

from bridgeway import WSGIToASGI
from bridgeway._types import Message
from tests.support.w2a_driver import Peer, make_scope

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment as Environ

SCRIPT = textwrap.dedent(
    """
    import threading
    from wsgiref.util import setup_testing_defaults

    from bridgeway import ASGIToWSGI

    stop = threading.Event()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    # a resource with a non-daemon thread of its own, like aiosqlite's
                    threading.Thread(target=stop.wait, args=(30,)).start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    stop.set()
                    print("lifespan shutdown ran", flush=True)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    application = ASGIToWSGI(app)
    environ = {}
    setup_testing_defaults(environ)
    body = b"".join(application(environ, lambda status, headers, exc_info=None: None))
    print("served", body.decode(), flush=True)
    # The process now exits, as a WSGI server's worker does at shutdown.
    """
)


def test_exit_runs_lifespan_shutdown_before_joining_non_daemon_threads() -> None:
    try:
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=8
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            "the process did not exit within 8 s: the lifespan shutdown never ran, so the"
            f" resource's non-daemon thread kept it alive (stdout: {exc.stdout!r})"
        ) from None
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["served ok", "lifespan shutdown ran"]


# W2A-OWS: Django's WSGIHandler sends each cookie as ``("Set-Cookie", morsel.output(
# header=""))``, whose value starts with a space (" csrftoken=...; Path=/"). WSGI servers
# write it as is (leading whitespace is optional whitespace on the wire), but
# ``WSGIToASGI`` passes it into ``http.response.start`` unchanged, and h11-based ASGI
# servers (uvicorn --http h11, hypercorn) refuse the value and drop the connection: the
# Django admin's login page, and every page setting the CSRF cookie, never arrives (seen
# in examples/django_migration under uvicorn-h11). Django's own ASGI handler strips it;
# RFC 9110 §5.5: a field value has no leading or trailing whitespace.


def cookie_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Set-Cookie", " csrftoken=abc; Path=/ ")],
    )
    return [b"ok"]


async def test_header_values_lose_surrounding_whitespace() -> None:
    peer = Peer()
    await WSGIToASGI(cookie_app)(make_scope(), peer.receive, peer.send)
    assert peer.header(b"set-cookie") == b"csrftoken=abc; Path=/"


# W2A-CLOSE-START: when the server's ``send()`` raises on ``http.response.start`` (h11
# rejecting a header value, as above), the WSGI iterable is never closed, so Django's
# ``request_finished`` never fires for that request and its database connection stays
# open in the worker thread. (Closing after an OSError from a body send is covered by
# tests/w2a/test_w2a_close.py; this is the start message, and not an OSError.)


class ClosingBody:
    def __init__(self) -> None:
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield b"ok"

    def close(self) -> None:
        self.closed.set()


async def test_close_called_when_send_of_response_start_raises() -> None:
    body = ClosingBody()

    def app(environ: Environ, start_response: StartResponse) -> ClosingBody:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    async def refuse_start(message: Message) -> None:
        if message["type"] == "http.response.start":
            raise RuntimeError("Illegal header value (as h11's LocalProtocolError says)")

    peer = Peer(on_send=refuse_start)
    with contextlib.suppress(Exception):
        await WSGIToASGI(app)(make_scope(), peer.receive, peer.send)
    # (The app's worker thread is left waiting too: one pool slot lost per such request.)
    assert await anyio.to_thread.run_sync(body.closed.wait, 5.0), "close() was never called"
