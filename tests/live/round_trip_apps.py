"""Probe apps for the live round-trip tests (``tests/servers/test_live_round_trip.py``): one
Starlette app served natively (``app``) and through ``WSGIToASGI(ASGIToWSGI(app))``
(``bridged``) under the same ASGI server.

Its lifespan writes markers ``startup`` and ``shutdown`` (``$BRIDGEWAY_MARKERS``, see
``a2w_apps.marker``) and yields a state; ``/state`` answers the state's value and
whether the lifespan ran on the loop serving the request; ``/echo`` is a websocket
that answers every text message with ``echo <text>``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio.lowlevel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bridgeway import ASGIToWSGI, WSGIToASGI
from tests.live.a2w_apps import marker


def _loop() -> int:
    """The running event loop's identity, asyncio's or trio's."""
    return id(anyio.lowlevel.current_token().native_token)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    marker("startup")
    yield {"answer": 42, "loop": _loop()}
    marker("shutdown")


async def _state(request: Request) -> Response:
    same_loop = request.state.loop == _loop()
    return JSONResponse({"answer": request.state.answer, "same_loop": same_loop})


async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"echo {text}")


app = Starlette(
    routes=[Route("/state", _state), WebSocketRoute("/echo", _echo)], lifespan=_lifespan
)
bridged = WSGIToASGI(ASGIToWSGI(app))


async def _judged(scope: Any, receive: Any, send: Any) -> None:
    """A raw app whose responses only the server can judge (a bare round trip passes
    them on, ``_a2w.nested``): ``/silent`` sends nothing, ``/early-trailers`` sends
    trailers before its start; ``/`` answers ``ok``. Its lifespan does nothing."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["path"] == "/silent":
        return
    if scope["path"] == "/early-trailers":
        await send({"type": "http.response.trailers", "headers": []})
        return
    await Response(b"ok")(scope, receive, send)


judged = _judged
judged_bridged = WSGIToASGI(ASGIToWSGI(_judged))
