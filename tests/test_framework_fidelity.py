"""Cases found by running Flask's, Werkzeug's, Starlette's and FastAPI's own test
suites through a double bridge (issue 13, scripts/framework_suites): each app is
served natively and through bridgeway, and the two answers are compared."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import httpx
from a2w_driver import call, serving
from starlette.requests import Request
from starlette.responses import JSONResponse

from bridgeway import WSGIToASGI
from bridgeway._types import Receive, Scope, Send


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
