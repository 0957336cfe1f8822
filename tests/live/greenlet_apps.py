"""ASGI apps served through ASGIToWSGI by greenlet servers (gunicorn ``-k gevent`` and
``-k eventlet``, uWSGI ``--gevent``), for ``tests/servers/test_live_a2w_greenlet.py``.

Import as ``tests.live.greenlet_apps:app``: a WSGI dispatcher over two ASGIToWSGI
adapters, which share the worker's one event loop, and a plain WSGI route.

- ``/api/...``: FastAPI (default loop mode). ``/api/sleep`` awaits ``asyncio.sleep(1)``
  and answers when it started and ended; ``/api/hello``; ``/api/upload`` (POST) answers
  the body's length and sha256; ``/api/stream?id=X`` sends a chunk every 20 ms until the
  client leaves, and its generator's ``finally`` then writes marker ``stream-X``;
  ``/api/diag`` counts what must not leak (see ``diag``).
- ``/raw/...``: a raw ASGI app in ``loop_mode="thread"``: the second adapter, with a
  lifespan of its own on the same loop. ``/raw/upload`` reads the body through
  ``receive()`` and survives a client that leaves halfway.
- ``/sync``: a plain WSGI view that runs ``asyncio.run()`` of its own, which works only
  while bridgeway's loop has given the thread's running-loop slot back.

Lifespan startup and shutdown write ``startup-NAME-PID-LOOP`` / ``shutdown-NAME-PID-LOOP``
markers in ``$BRIDGEWAY_MARKERS`` (``tests.live.a2w_apps.marker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, cast

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from bridgeway import ASGIToWSGI
from tests.live.a2w_apps import marker
from tests.support.asgi_types import Receive, Scope, Send

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def _lifespan_marker(kind: str, name: str) -> None:
    marker(f"{kind}-{name}-{os.getpid()}-{id(asyncio.get_running_loop())}")


@contextlib.asynccontextmanager
async def _api_lifespan(app: FastAPI) -> AsyncIterator[None]:
    _lifespan_marker("startup", "api")
    yield
    _lifespan_marker("shutdown", "api")


api = FastAPI(lifespan=_api_lifespan)


@api.get("/api/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@api.get("/api/sleep")
async def sleep() -> dict[str, float]:
    started = time.time()
    await asyncio.sleep(1)
    return {"start": started, "end": time.time(), "pid": os.getpid()}


@api.post("/api/upload")
async def upload(request: Request) -> dict[str, Any]:
    body = await request.body()
    return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


@api.get("/api/stream")
async def stream(id: str) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        try:
            for i in range(100_000):
                yield b"chunk %d\n" % i
                await asyncio.sleep(0.02)
        finally:
            marker(f"stream-{id}")

    return StreamingResponse(chunks(), media_type="text/plain")


def _greenlets_alive() -> int:
    greenlet_type = sys.modules["greenlet"].greenlet
    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet_type) and not o.dead)


@api.get("/api/diag")
async def diag() -> dict[str, Any]:
    """What a request could leak, counted after a full collection."""
    gc.collect()
    loop = asyncio.get_running_loop()
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    return {
        "pid": os.getpid(),
        "greenlets": _greenlets_alive(),
        "threads": threading.active_count(),  # green threads too, when patched
        "os_threads": len(os.listdir("/proc/self/task")),
        "open_loops": sum(1 for o in loops if not o.is_closed()),
        "tasks": len(asyncio.all_tasks(loop)) - 1,  # less this request's own task
        "asyncgens": len(getattr(loop, "_asyncgens", ())),
        "loops_created": api_adapter.loops_created + raw_adapter.loops_created,
    }


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        _lifespan_marker("startup", "raw")
        await send({"type": "lifespan.startup.complete"})
        await receive()
        _lifespan_marker("shutdown", "raw")
        await send({"type": "lifespan.shutdown.complete"})
        return
    length, complete = 0, scope["method"] != "POST"
    while not complete:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        length += len(message.get("body", b""))
        complete = not message.get("more_body", False)
    body = json.dumps({"path": scope["path"], "length": length, "complete": complete}).encode()
    headers = [(b"content-type", b"application/json")]
    with contextlib.suppress(OSError):  # the client may be gone (a cut upload)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def sync_view(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    async def inner() -> float:
        await asyncio.sleep(0.001)
        return time.time()

    body = json.dumps({"ran": asyncio.run(inner())}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


api_adapter = ASGIToWSGI(api)
raw_adapter = ASGIToWSGI(raw_app, loop_mode="thread")


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    adapter = api_adapter if path.startswith("/api/") else raw_adapter
    if path.startswith(("/api/", "/raw/")):
        # cast: bridgeway's StartResponse protocol types exc_info's traceback as
        # optional, which typeshed's does not (as in live.a2w_apps.ticker).
        return adapter(environ, cast(Any, start_response))
    if path == "/sync":
        return sync_view(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]
