"""Starlette and FastAPI apps under ASGIToWSGI, in-process: lifespan state, routing
under a root path, streaming with Starlette's disconnect listener, background tasks and
error pages (issue 3: "any ASGI app under any WSGI server")."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.responses import PlainTextResponse

from bridgeway._types import Receive, Scope, Send
from tests.support.a2w_driver import call, make_environ, serving
from tests.support.waiting import TIMEOUT


def make_app(events: list[str], done: threading.Event, release: threading.Event) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"lock": asyncio.Lock(), "hits": []}
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/caf\u00e9/{name}")
    async def hello(name: str, request: Request) -> dict[str, Any]:
        async with request.state.lock:
            request.state.hits.append(name)
        return {"name": name, "hits": len(request.state.hits), "root": request.scope["root_path"]}

    @app.post("/echo")
    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse((await request.body())[::-1])

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def gen() -> AsyncIterator[bytes]:
            for i in range(5):
                await asyncio.sleep(0.01)
                yield b"chunk %d\n" % i

        return StreamingResponse(gen(), media_type="text/plain")

    @app.get("/background")
    async def background() -> PlainTextResponse:
        async def work() -> None:
            # Held until the test has its response: the response cannot have waited
            # for this work (a timing bound would only say "fast", not "before").
            await asyncio.to_thread(release.wait, TIMEOUT)
            done.set()

        return PlainTextResponse("queued", background=BackgroundTask(work))

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(status_code=404, detail="nope")

    @app.get("/crash")
    async def crash() -> None:
        raise ZeroDivisionError("crash")

    return app


def test_fastapi_app_under_asgi_to_wsgi(caplog: pytest.LogCaptureFixture) -> None:
    events: list[str] = []
    done = threading.Event()
    release = threading.Event()
    with serving(make_app(events, done, release)) as adapter:
        # A non-ASCII path under a root path (A2W-SCOPE-05, starlette#2400 semantics).
        first = call(adapter, make_environ(path="/caf\xc3\xa9/ann", script_name="/api"))
        second = call(adapter, make_environ(path="/caf\xc3\xa9/bob", script_name="/api"))
        assert first.code == 200, first
        assert json.loads(first.body) == {"name": "ann", "hits": 1, "root": "/api"}
        assert json.loads(second.body) == {"name": "bob", "hits": 2, "root": "/api"}

        echoed = call(adapter, make_environ("POST", path="/echo", body=b"abcdef"))
        assert echoed.body == b"fedcba"

        # StreamingResponse runs a disconnect listener on receive(): it must not see a
        # premature disconnect (A2W-RECV-06); each chunk arrives on its own.
        streamed = call(adapter, make_environ(path="/stream"))
        assert streamed.chunks == [b"chunk %d\n" % i for i in range(5)]

        queued = call(adapter, make_environ(path="/background"))
        assert queued.body == b"queued"
        assert not done.is_set()  # answered while the background task still waits
        release.set()
        assert done.wait(TIMEOUT)

        assert call(adapter, make_environ(path="/missing")).code == 404
        # The app's exception reaches the WSGI caller, as a native WSGI app's would.
        with pytest.raises(ZeroDivisionError):
            call(adapter, make_environ(path="/crash"))
        # One lifespan per loop: the background work may still hold the first loop (it
        # is checked in by its driver thread) when the next request comes, which then
        # runs on a second loop with a startup of its own.
        loops = adapter.loops_created
        assert 1 <= loops <= 2
        assert events == ["startup"] * loops
    assert events == ["startup"] * loops + ["shutdown"] * loops
    # The server logs it; bridgeway does not log it a second time.
    assert not [r for r in caplog.records if r.name == "bridgeway" and r.levelno >= logging.ERROR]


def test_streaming_response_stops_when_the_server_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A2W-RECV-07 / A2W-SEND-08 with Starlette: an endless StreamingResponse stops
    soon after the WSGI server closes the iterable (send() raises OSError, which
    Starlette turns into ClientDisconnect), its task ends well before the grace period,
    and no error is logged for it.

    Documented inline-mode nuance: the generator's own ``finally`` runs when Python
    finalises the abandoned async generator, which schedules ``aclose()`` on the loop;
    a parked inline loop runs it on its next request or at shutdown (the A2W-LIFE-04
    trade-off), so this test checks the app task, not the generator's ``finally``."""
    produced = 0
    ended = threading.Event()
    fastapi_app = FastAPI()

    @fastapi_app.get("/sse")
    async def sse() -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            nonlocal produced
            while True:
                produced += 1
                yield b"data: tick\n\n"
                await asyncio.sleep(0.01)

        return StreamingResponse(events(), media_type="text/event-stream")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await fastapi_app(scope, receive, send)
        finally:
            ended.set()

    with serving(app, lifespan="off", disconnect_grace=5.0) as adapter:
        began = time.monotonic()
        result = call(adapter, make_environ(path="/sse"), take=3)
        assert result.chunks == [b"data: tick\n\n"] * 3
        assert ended.wait(TIMEOUT)
        assert time.monotonic() - began < 2.0  # ended by the disconnect, not cancelled
        assert produced <= 5
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
