"""Cases found by running Flask's, Werkzeug's, Starlette's and FastAPI's own test
suites through a double bridge (issue 13, scripts/framework_suites): each app is
served natively and through bridgeway, and the two answers are compared."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import subprocess
import sys
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.to_thread
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from werkzeug.test import Client

from bridgeway import ASGIToWSGI, WSGIToASGI
from bridgeway._types import Environ, Receive, Scope, Send, StartResponse
from tests.support.a2w_driver import StartResponseRecorder, call, make_environ, serving
from tests.support.w2a_driver import call as w2a_call


async def get(app: Any, path: str = "/") -> httpx.Response:
    """One request through httpx's ASGITransport (the client Starlette's own async
    tests use; ``starlette.testclient`` warns on import, an error in this suite)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path)


async def pushes(scope: Scope, receive: Receive, send: Send) -> None:
    """Starlette's own push test: the app believes the server can push."""
    scope.setdefault("extensions", {})["http.response.push"] = {}
    await Request(scope, receive, send).send_push_promise("/style.css")
    await JSONResponse({"json": "OK"})(scope, receive, send)


async def test_a_push_promise_nobody_advertised_is_dropped() -> None:
    """EXT-08: a server that cannot push drops ``http.response.push`` (ASGI-www §HTTP),
    as it drops early hints and debug messages; the response goes on as natively."""
    native = await get(pushes)
    assert (native.status_code, native.json()) == (200, {"json": "OK"})
    with serving(pushes, lifespan="off") as adapter:
        ours = await anyio.to_thread.run_sync(call, adapter)  # a WSGI server's thread
        bridged = await get(WSGIToASGI(adapter))
    assert (ours.status, ours.body) == ("200 OK", native.content)
    assert (bridged.status_code, bridged.content) == (200, native.content)


# ----------------------- what the WSGI server above an ASGIToWSGI put in its environ


def probe(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Echoes what a WSGI app may read from its server and middleware, and logs to
    ``wsgi.errors`` as Flask's logger does."""
    environ["wsgi.errors"].write("probe was here\n")
    seen = {
        key: environ.get(key)
        for key in ("werkzeug._foo", "REMOTE_USER", "PATH_INFO", "HTTP_X_TOKEN")
    }
    seen["preserve"] = "werkzeug.debug.preserve_context" in environ
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


def client_get(app: Any, errors: io.StringIO, **environ: Any) -> dict[str, Any]:
    response = Client(app).get(
        "/p", headers={"X-Token": "t"}, environ_overrides=environ, errors_stream=errors
    )
    assert response.status_code == 200
    result: dict[str, Any] = json.loads(response.data)
    return result


def test_a_double_bridge_passes_the_servers_context_keys_as_wsgi_middleware_does() -> None:
    """Behind ``ASGIToWSGI(WSGIToASGI(app))`` the WSGI app sees the extension keys and
    non-request CGI keys its WSGI server and middleware set, and logs to the server's
    ``wsgi.errors``, as behind plain WSGI middleware; the request itself still comes
    from the scope. Found by Flask's (``errors_stream``) and werkzeug's
    (``environ_overrides``) suites."""
    context = {"werkzeug._foo": 1, "REMOTE_USER": "ann"}
    native_errors, bridged_errors = io.StringIO(), io.StringIO()
    native = client_get(probe, native_errors, **context)
    with serving(WSGIToASGI(probe), lifespan="off") as bridged_app:
        bridged = client_get(bridged_app, bridged_errors, **context)
    assert native["werkzeug._foo"] == 1
    assert native["REMOTE_USER"] == "ann"
    assert (native["PATH_INFO"], native["HTTP_X_TOKEN"]) == ("/p", "t")
    assert {k: v for k, v in bridged.items() if k != "preserve"} == {
        k: v for k, v in native.items() if k != "preserve"
    }
    assert bridged_errors.getvalue() == native_errors.getvalue() == "probe was here\n"


def test_the_request_comes_from_the_scope_and_thread_bound_keys_stay_behind() -> None:
    """An ASGI middleware between the two adapters that rewrites the request wins over
    the upstream environ; werkzeug's ``preserve_context`` callback is not passed (the app
    runs in another thread than its caller, see _w2a.inherit._THREAD_BOUND; bridgeway hands
    its objects over only for the very request the server made, which this middleware
    changed: tests/mix/test_round_trip_wsgi.py); an explicit ``errors=`` stream is kept."""

    async def rewrite(scope: Scope, receive: Receive, send: Send) -> None:
        scope = dict(scope, path="/q", headers=[(b"x-token", b"u")])
        await inner(scope, receive, send)

    mine = io.StringIO()
    inner = WSGIToASGI(probe, errors=mine)
    with serving(rewrite, lifespan="off") as bridged_app:
        client = Client(bridged_app)
        server_errors = io.StringIO()
        response = client.get(
            "/p",
            headers={"X-Token": "t"},
            # what Flask's "with client:" sets
            environ_overrides={"werkzeug.debug.preserve_context": [].append},
            errors_stream=server_errors,
        )
    seen = json.loads(response.data)
    assert (seen["PATH_INFO"], seen["HTTP_X_TOKEN"], seen["preserve"]) == ("/q", "u", False)
    assert (mine.getvalue(), server_errors.getvalue()) == ("probe was here\n", "")


# ----------------------------------------------- nothing outlives what it served


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hi"]


async def plain_hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


def loops_left_after_serving(app: Any, times: int = 3) -> int:
    """Serve one request on each of ``times`` fresh asyncio loops (as each test client
    makes one), drop them, and count the loops still alive once collected."""
    refs: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one() -> None:
        refs.append(weakref.ref(asyncio.get_running_loop()))
        assert (await w2a_call(app)).body == b"hi"

    for _ in range(times):
        asyncio.run(one())
    # The worker thread lets go of its job just after it handed the response over, so
    # allow it a moment (it used to hold the last one until its next job, or for ever
    # through the handle cache).
    deadline = time.monotonic() + 2.0
    while True:
        gc.collect()
        left = sum(ref() is not None for ref in refs)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


def test_w2a_keeps_no_event_loop_or_app_alive_after_serving() -> None:
    """A native ASGI app leaves nothing behind on the loops that ran it; neither may
    WSGIToASGI: its per-loop handle cache held every loop for the life of the process,
    and an idle worker thread held its last request (environ, app iterable, loop) until
    its next job. Found by werkzeug's own leak test (test_no_memory_leak_from_Rule_builder)
    through a double bridge."""
    assert loops_left_after_serving(plain_hello) == 0
    assert loops_left_after_serving(WSGIToASGI(hello)) == 0


async def test_pathsend_of_a_relative_path_serves_the_file_the_app_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette's ``FileResponse("image.png")`` sends ``http.response.pathsend`` with
    the relative path once the extension is advertised; natively (no pathsend) it
    streams that file from the working directory, and so must ASGIToWSGI (EXT-06).
    Found by FastAPI's tutorial tests."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "image.png").write_bytes(b"not really a PNG")
    app = FileResponse("image.png", media_type="image/png")
    native = await get(app)
    assert (native.status_code, native.content) == (200, b"not really a PNG")
    with serving(app, lifespan="off") as adapter:
        ours = await anyio.to_thread.run_sync(call, adapter)
    assert (ours.status, ours.body) == ("200 OK", native.content)


def test_an_asgi_to_wsgi_dropped_without_shutdown_still_shuts_its_loops_down() -> None:
    """A test suite that wraps each app in a fresh ``ASGIToWSGI`` (one per test client,
    as a plugin routing a framework's suite does) never calls ``shutdown()``. Collected,
    the adapter runs lifespan shutdown on its loops and closes them, as a server does
    when it stops; its loops used to be freed open (an "unclosed event loop"
    ResourceWarning, an error under ``-W error``) with the lifespan task pending."""
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]
                events.append(kind)
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        await plain_hello(scope, receive, send)

    adapter = ASGIToWSGI(app)
    assert call(adapter).body == b"hi"
    gone = weakref.ref(adapter)
    del adapter
    gc.collect()
    assert gone() is None
    deadline = time.monotonic() + 5.0
    while events != ["startup", "shutdown"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert events == ["startup", "shutdown"]


ABANDONED = """
from tests.support.a2w_driver import make_environ, StartResponseRecorder
from bridgeway import ASGIToWSGI

async def stream(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"a", "more_body": True})
    await send({"type": "http.response.body", "body": b"b"})

kept = []
for _ in range(3):
    adapter = ASGIToWSGI(stream, lifespan="off")
    body = adapter(make_environ(), StartResponseRecorder())
    assert next(iter(body)) == b"a"
    kept.append((adapter, body))  # never closed, as a test client may leave a stream
"""


@pytest.mark.servers  # a child interpreter that takes seconds to exit: not the fast lane
def test_exit_is_not_held_up_once_per_adapter_with_an_unclosed_response() -> None:
    """A process whose WSGI caller left streamed responses unclosed (test clients do):
    at exit each adapter waits a bounded time for its loop to come back; those waits run
    side by side, not one after another (a framework suite with 30 such adapters took
    2.5 minutes to exit)."""
    started = time.monotonic()
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", ABANDONED], check=True, timeout=60, cwd=root)
    assert time.monotonic() - started < 10.0  # one wait is 5 s; three in a row were 15


def test_a_cancelled_error_the_app_raises_is_its_own_error() -> None:
    """An app that lets ``CancelledError`` escape before it answered: natively the
    in-process client sees that exception (FastAPI's telemetry tests raise it on
    purpose); ASGIToWSGI took it for its own cancellation of a request whose client had
    left and answered 500 for "returned without http.response.start"."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raise asyncio.CancelledError

    async def natively() -> None:
        await get(app)

    with pytest.raises(asyncio.CancelledError):
        anyio.run(natively, backend="asyncio")
    with serving(app, lifespan="off") as adapter, pytest.raises(asyncio.CancelledError):
        call(adapter)
    with serving(app, lifespan="off", propagate_exceptions=False) as adapter:
        result = call(adapter)
    assert result.status == "500 Internal Server Error"
    assert "CancelledError" in result.errors


async def no_content_then_raises(scope: Scope, receive: Receive, send: Send) -> None:
    """A complete 204, then an exception (ServerErrorMiddleware re-raises this way)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
    raise RuntimeError("after the response")


async def quietly(app: Any) -> tuple[int, BaseException | None]:
    """Status the client gets when the server does not re-raise app errors (as
    ``TestClient(raise_server_exceptions=False)``), and the error it would re-raise."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        status = (await client.get("/")).status_code
    try:
        await get(app)
    except RuntimeError as exc:
        return status, exc
    return status, None


async def test_an_error_after_a_complete_empty_response_keeps_the_response() -> None:
    """Natively the client gets the 204 and the server then sees the app's exception.
    ASGIToWSGI raised it from the iterable before the WSGI server had sent the headers
    (an empty body is sent only at the end of the iteration), so the server answered
    its own 500; it is now raised from close(), after the response went out. Found by
    Starlette's test_background_task (raise_server_exceptions=False)."""
    native = await quietly(no_content_then_raises)
    assert native[0] == 204
    assert isinstance(native[1], RuntimeError)
    with serving(no_content_then_raises, lifespan="off") as adapter:
        bridged = await quietly(WSGIToASGI(adapter))
        result = await anyio.to_thread.run_sync(_close_raises, adapter)
    assert bridged[0] == 204
    assert isinstance(bridged[1], RuntimeError)
    assert result == ("204 No Content", "after the response")


def _close_raises(adapter: ASGIToWSGI) -> tuple[str, str]:
    """A WSGI server's view: the whole (empty) response, then close() raises."""
    recorder = StartResponseRecorder()
    body = adapter(make_environ(), recorder)
    assert list(body) == []
    with pytest.raises(RuntimeError) as raised:
        cast(Any, body).close()  # as a WSGI server would (PEP 3333)
    return recorder.calls[-1][0], str(raised.value)
