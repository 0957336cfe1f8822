"""A WSGIToASGI request leaves no reference cycle behind (issue 14: the hot path).

Everything a request made (its environ, ``wsgi.input``, the bridge's per-request state)
and everything the server lent it (``receive``, ``send``) must be freed by reference
counting as soon as the request is over. A cycle per request would leave all of it to
the garbage collector: memory grows between collections, and each collection walks
every request's objects, which shows as a slower hot path.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterable, Iterator

import pytest

from bridgeway import WSGIToASGI
from bridgeway._types import Environ, StartResponse
from tests.support.w2a_driver import Peer, call, wait_for

pytestmark = pytest.mark.anyio


def plain(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def streamed(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"hel"
    yield b"lo"


def reads_body(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


@pytest.mark.parametrize("app", [plain, streamed, reads_body], ids=lambda app: app.__name__)
async def test_request_objects_are_freed_without_the_garbage_collector(
    app: object,
) -> None:
    adapter = WSGIToASGI(app)  # type: ignore[arg-type]
    await call(adapter, peer=Peer([b"hello"]))  # warm up: the pool's thread, the loop's handle
    gc.collect()
    gc.disable()
    try:
        peer = Peer([b"hello"])
        freed = weakref.ref(peer)  # held by the request only through receive and send
        await call(adapter, peer=peer)
        assert peer.body == b"hello"
        del peer
        # The worker thread lets go of the request just after its last post.
        await wait_for(lambda: freed() is None)
    finally:
        gc.enable()
