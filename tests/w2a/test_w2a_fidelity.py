"""WSGIToASGI beside the native references (issue 13, points 1 and 4): the same WSGI
app through bridgeway, a2wsgi (what uvicorn's ``WSGIMiddleware`` is when a2wsgi is
installed) and werkzeug's test client (a WSGI server's view)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from a2wsgi import WSGIMiddleware
from werkzeug.test import Client

from bridgeway import WSGIToASGI
from bridgeway._types import Environ, StartResponse
from tests.support.w2a_driver import Peer, call, make_scope

pytestmark = pytest.mark.anyio

HEADER_SHAPES = {
    "pairs-as-lists": [["X-Colour", "Blue"], ["Content-Type", "text/plain"]],
    "tuple-of-tuples": (("X-Colour", "Blue"), ("Content-Type", "text/plain")),
    "tuple-of-lists": (["X-Colour", "Blue"], ["Content-Type", "text/plain"]),
}


def shaped(headers: Any) -> Any:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", headers)
        return [b"blue"]

    return app


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("shape", list(HEADER_SHAPES))
async def test_header_shapes_are_served_as_natively(shape: str) -> None:
    app = shaped(HEADER_SHAPES[shape])
    native = Client(app).get("/")
    assert (native.status_code, native.headers["X-Colour"]) == (200, "Blue")
    ours = await call(WSGIToASGI(app))
    theirs = await call(WSGIMiddleware(app))  # type: ignore[arg-type]
    for peer in (ours, theirs):
        assert peer.status == 200
        assert peer.body == native.data
        assert (b"x-colour", b"Blue") in peer.headers
        assert (b"content-type", b"text/plain") in peer.headers


class Boom(Exception):
    pass


def failing(where: str) -> Any:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        if where == "before":
            raise Boom(where)
        yield b"part"
        raise Boom(where)

    return app


async def outcome(asgi_app: Any) -> tuple[Peer, BaseException | None]:
    peer = Peer()
    try:
        await call(asgi_app, make_scope(), peer)
    except Boom as exc:
        return peer, exc
    return peer, None


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("where", ["before", "mid-body"])
async def test_errors_surface_where_a2wsgi_surfaces_them(where: str) -> None:
    """Same messages sent (none before the start; no final body after it), and the same
    kind of exception out of the ASGI call for the server to log and answer."""
    ours, our_error = await outcome(WSGIToASGI(failing(where)))
    theirs, their_error = await outcome(WSGIMiddleware(failing(where)))
    assert isinstance(our_error, Boom)
    assert isinstance(their_error, Boom)
    assert str(our_error) == str(their_error)
    assert ours.final_messages == theirs.final_messages == 0
    assert ours.body == theirs.body
    if where == "before":
        # PEP 3333 §The start_response() Callable: headers wait for the first body
        # byte, so the server can still answer 500 (as gunicorn does natively); a2wsgi
        # sends them at start_response(), and uvicorn can then only abort.
        assert ours.messages == []
        assert [m["type"] for m in theirs.messages] == ["http.response.start"]
    else:
        assert ours.status == theirs.status == 200
