"""An adapter served by a server of the other kind says so, naming the fix.

ASGI servers call an app whose ``__call__`` is not a coroutine function as an ASGI 2 app
(uvicorn's, hypercorn's and daphne's auto-detection, reproduced here by asgiref's
``guarantee_single_callable``), or as ``app(scope, receive, send)`` when told it is ASGI 3
(granian, ``uvicorn --interface asgi3``). Compared with a plain WSGI function served the
same way, which fails with Python's bare arity error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from asgiref.compatibility import guarantee_single_callable

from bridgeway import ASGIToWSGI
from tests.support.a2w_driver import StartResponseRecorder, make_environ

SCOPE = {"type": "http", "method": "GET", "path": "/", "headers": []}


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never reached")


def wsgi_app(environ: Any, start_response: Any) -> Iterable[bytes]:
    raise AssertionError("never reached")


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Any) -> None:
    pass


async def serve_like_an_asgi_server(app: Any, style: str) -> None:
    if style == "asgi2":  # auto-detection: app(scope), then instance(receive, send)
        await guarantee_single_callable(app)(dict(SCOPE), receive, send)  # type: ignore[no-untyped-call]
    else:
        await app(dict(SCOPE), receive, send)


@pytest.mark.parametrize("style", ["asgi2", "asgi3"])
async def test_asgi_to_wsgi_under_an_asgi_server_names_the_fix(style: str) -> None:
    with pytest.raises(TypeError) as native:
        await serve_like_an_asgi_server(wsgi_app, style)
    assert "positional argument" in str(native.value)  # the raw error users met before

    with pytest.raises(TypeError) as bridged:
        await serve_like_an_asgi_server(ASGIToWSGI(asgi_app), style)
    message = str(bridged.value)
    assert "ASGIToWSGI is a WSGI app, but an ASGI server called it" in message
    assert "serve the ASGI app itself" in message
    assert "WSGIToASGI(app)" in message


def test_asgi_to_wsgi_under_a_wsgi_server_is_unchanged() -> None:
    async def hello(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})

    adapter = ASGIToWSGI(hello, lifespan="off")
    try:
        recorder = StartResponseRecorder()
        assert b"".join(adapter(make_environ(), recorder)) == b"hi"
        assert recorder.calls[0][0] == "200 OK"
    finally:
        adapter.shutdown()
