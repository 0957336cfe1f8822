"""ASGI probe apps served through ASGIToWSGI by real WSGI servers
(``tests/servers/test_live_a2w.py``).

Import as ``tests.live.a2w_apps:NAME``. What the app saw or did is reported two ways:
JSON answers (pid, ``id(loop)``, counters) and marker files in the directory named by
``$BRIDGEWAY_MARKERS`` (one file per event; each holds ``time.time()`` of the event on its
first line, so a test can tell *when* something happened in the server process).

- ``echo``: a raw ASGI app. ``/info`` gives pid, loop id, process-wide lifespan startup
  count and the adapter's ``loops_created``; ``/sse?id=X`` sends an event every 100 ms
  until the client leaves, then writes ``sse-X`` (how it noticed: ``receive`` or
  ``oserror``); anything else echoes the scope and the body's sha256 as JSON.
  Lifespan startup/shutdown write ``startup-PID-LOOP`` / ``shutdown-PID-LOOP``.
- ``stateful``: Starlette; the lifespan makes an ``asyncio.Lock`` and an
  ``httpx.AsyncClient`` (to ``$BRIDGEWAY_UPSTREAM``, or a ``MockTransport``) kept in
  state; ``/use`` uses both from two tasks at once; ``/bg?id=X`` answers, then a
  ``BackgroundTask`` sleeps 3 s and writes ``bg-X``. Same startup/shutdown markers.
- ``failing``: Starlette whose lifespan startup raises "db down"; its handler writes
  ``handler-PID-N`` (it must never run).
- ``ticker``: a WSGI dispatcher over the same ticker app (a 100 ms ticker started at
  lifespan) as ``/thread`` (``loop_mode="thread"``) and ``/inline`` (the default).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bridgeway import ASGIToWSGI
from tests.support.asgi_types import Receive, Scope, Send

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


_startup_count = 0
_counter_lock = threading.Lock()


def marker(name: str, text: str = "") -> None:
    """Write marker file ``name`` atomically (a reader never sees half a file)."""
    folder = os.environ.get("BRIDGEWAY_MARKERS")
    if not folder:
        return
    path = Path(folder) / name
    tmp = path.with_name(f".{name}.{threading.get_ident()}.tmp")
    tmp.write_text(f"{time.time()!r}\n{text}")
    os.replace(tmp, path)


def loop_id() -> int:
    return id(asyncio.get_running_loop())


def _record_startup() -> None:
    global _startup_count
    with _counter_lock:
        _startup_count += 1
    marker(f"startup-{os.getpid()}-{loop_id()}", threading.current_thread().name)


def _record_shutdown() -> None:
    marker(f"shutdown-{os.getpid()}-{loop_id()}")


async def _json(send: Send, data: object, status: int = 200) -> None:
    body = json.dumps(data, sort_keys=True).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    await receive()
    _record_startup()
    await send({"type": "lifespan.startup.complete"})
    await receive()
    _record_shutdown()
    await send({"type": "lifespan.shutdown.complete"})


# --- echo --------------------------------------------------------------------------


async def _sse(scope: Scope, receive: Receive, send: Send) -> None:
    query = dict(p.partition("=")[::2] for p in scope["query_string"].decode().split("&"))
    name = f"sse-{query.get('id', 'x')}"
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        marker(name, "receive")

    watcher = asyncio.create_task(watch())
    try:
        for i in itertools.count():
            event = f"id: {i}\ndata: tick {i}\n\n".encode()
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await asyncio.wait({watcher}, timeout=0.1)
            if watcher.done():
                return
    except OSError:
        marker(name, "oserror")
    finally:
        watcher.cancel()


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    assert scope["type"] == "http"
    path = scope["path"]
    if path == "/info":
        await _json(
            send,
            {
                "pid": os.getpid(),
                "loop": loop_id(),
                "startups": _startup_count,
                "loops_created": echo.loops_created,
            },
        )
        return
    if path == "/sse":
        await _sse(scope, receive, send)
        return
    digest, length, more = hashlib.sha256(), 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        digest.update(message.get("body", b""))
        length += len(message.get("body", b""))
        more = message.get("more_body", False)
    await _json(
        send,
        {
            "pid": os.getpid(),
            "method": scope["method"],
            "path": scope["path"],
            "raw_path": scope.get("raw_path", b"").decode("latin-1"),
            "root_path": scope.get("root_path", ""),
            "query_string": scope["query_string"].decode("latin-1"),
            "http_version": scope["http_version"],
            "scheme": scope["scheme"],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "has_state": "state" in scope,
            "sha256": digest.hexdigest(),
            "length": length,
        },
    )


echo = ASGIToWSGI(echo_app)


# --- stateful (Starlette: lock and httpx client in lifespan state) --------------------


async def _upstream_mock(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"pong": True})


@contextlib.asynccontextmanager
async def _stateful_lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    upstream = os.environ.get("BRIDGEWAY_UPSTREAM")
    if upstream:
        client = httpx.AsyncClient(base_url=upstream)
    else:
        client = httpx.AsyncClient(
            base_url="http://upstream.test", transport=httpx.MockTransport(_upstream_mock)
        )
    _record_startup()
    try:
        yield {"lock": asyncio.Lock(), "client": client, "loop": loop_id(), "uses": [0]}
    finally:
        await client.aclose()
        _record_shutdown()


async def use(request: Request) -> Response:
    lock: asyncio.Lock = request.state.lock
    client: httpx.AsyncClient = request.state.client
    hold = float(request.query_params.get("hold", "0"))

    async def one() -> bool:
        # Two tasks per request: the second waits on the lock, which binds the lock to
        # this loop (an uncontended acquire binds nothing).
        async with lock:
            response = await client.get("/ping")
            if hold:
                await asyncio.sleep(hold)
            request.state.uses[0] += 1
            return bool(response.json()["pong"])

    results = await asyncio.gather(one(), one())
    return JSONResponse(
        {
            "ok": all(results),
            "pid": os.getpid(),
            "loop": loop_id(),
            "state_loop": request.state.loop,
            "uses": request.state.uses[0],
        }
    )


async def background(request: Request) -> Response:
    name = f"bg-{request.query_params['id']}"

    async def work() -> None:
        await asyncio.sleep(3.0)
        marker(name)

    return PlainTextResponse("queued", background=BackgroundTask(work))


async def info(request: Request) -> Response:
    return JSONResponse({"pid": os.getpid(), "loop": loop_id()})


stateful = ASGIToWSGI(
    Starlette(
        routes=[Route("/use", use), Route("/bg", background), Route("/", info)],
        lifespan=_stateful_lifespan,
    )
)


# --- failing (lifespan startup fails) -------------------------------------------------

_handler_calls = itertools.count(1)


@contextlib.asynccontextmanager
async def _failing_lifespan(app: Starlette) -> AsyncIterator[None]:
    raise RuntimeError("db down")
    yield  # pragma: no cover


async def handler(request: Request) -> Response:
    marker(f"handler-{os.getpid()}-{next(_handler_calls)}")
    return PlainTextResponse("handler ran")


failing = ASGIToWSGI(Starlette(routes=[Route("/", handler)], lifespan=_failing_lifespan))


# --- ticker (loop_mode="thread" vs "inline") ------------------------------------------


async def ticker_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        ticks = scope["state"]["ticks"] = [0]

        async def tick() -> None:
            while True:
                await asyncio.sleep(0.1)
                ticks[0] += 1

        task = asyncio.create_task(tick())
        await send({"type": "lifespan.startup.complete"})
        await receive()
        task.cancel()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await _json(send, {"ticks": scope["state"]["ticks"][0], "loop": loop_id()})


ticker_thread = ASGIToWSGI(ticker_app, loop_mode="thread")
ticker_inline = ASGIToWSGI(ticker_app)


def ticker(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    app = ticker_thread if environ.get("PATH_INFO", "").startswith("/thread") else ticker_inline
    # cast: bridgeway's StartResponse protocol types exc_info's traceback as optional,
    # which typeshed's does not, so mypy refuses the (working) call without it.
    return app(environ, cast(Any, start_response))
