"""Fallback routing through both dispatchers, in process: the body replayed to the legacy
app, the replay limit, late start_response, and answers passed through untouched."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from werkzeug.test import Client

from bridgeway import WSGIDispatcher
from bridgeway._mix.wsgi_fallback import _Prepended
from tests.live.mixed_apps import REPLAY_LIMIT, fallback_asgi, raw_wsgi
from tests.support.w2a_driver import Peer, call, make_scope

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


@pytest.fixture
def fallback_wsgi() -> Iterator[WSGIDispatcher]:
    dispatcher = fallback_asgi.as_wsgi()
    yield dispatcher
    dispatcher.shutdown(5.0)


def post_wsgi(app: WSGIDispatcher, path: str, body: bytes) -> dict[str, Any]:
    response = Client(app).post(path, data=body, buffered=True)
    return {"status": response.status_code, **(response.json or {})}


def test_wsgi_fallback_replays_the_body_to_the_legacy_app(fallback_wsgi: WSGIDispatcher) -> None:
    new = post_wsgi(fallback_wsgi, "/echo", b"hello")
    assert new == {"status": 200, "app": "new", "body": "hello"}
    legacy = post_wsgi(fallback_wsgi, "/old/form", b"name=value")
    assert (legacy["status"], legacy["app"], legacy["body"]) == (200, "raw", "name=value")
    assert legacy["PATH_INFO"] == "/old/form"


def test_wsgi_fallback_over_the_limit_keeps_the_first_answer(
    fallback_wsgi: WSGIDispatcher,
) -> None:
    assert post_wsgi(fallback_wsgi, "/old", b"x" * (REPLAY_LIMIT + 1))["status"] == 404
    assert post_wsgi(fallback_wsgi, "/old", b"x" * REPLAY_LIMIT)["app"] == "raw"


def test_wsgi_fallback_replays_a_chunked_body(fallback_wsgi: WSGIDispatcher) -> None:
    # No CONTENT_LENGTH, wsgi.input_terminated: read to EOF, bounded by the limit.
    for size, app in [(10, "raw"), (REPLAY_LIMIT + 1, None)]:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/old",
            "SCRIPT_NAME": "",
            "wsgi.input": io.BytesIO(b"y" * size),
            "wsgi.input_terminated": True,
        }
        response = Client(fallback_wsgi).open(
            environ_overrides=environ, method="POST", buffered=True
        )
        assert (response.json or {}).get("app") == app, size


async def test_asgi_fallback_replays_the_body_to_the_legacy_app() -> None:
    body = [b"name=", b"value"]  # two http.request messages, no content-length
    peer = await call(fallback_asgi, make_scope("POST", "/old/form"), Peer(body))
    data = json.loads(peer.body)
    assert (peer.status, data["app"], data["body"], data["method"]) == (
        200,
        "raw",
        "name=value",
        "POST",
    )
    # The new app's 404 never reached the server: one response start, the legacy app's.
    assert [m["type"] for m in peer.messages].count("http.response.start") == 1
    peer = await call(fallback_asgi, make_scope("POST", "/echo"), Peer([b"hi"]))
    assert json.loads(peer.body) == {"app": "new", "body": "hi"}
    assert [m["type"] for m in peer.messages].count("http.response.start") == 1


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_asgi_fallback_over_the_limit_keeps_the_first_answer(declared: bool) -> None:
    big = b"x" * (REPLAY_LIMIT + 1)
    headers = [(b"content-length", str(len(big)).encode())] if declared else []
    peer = await call(
        fallback_asgi, make_scope("POST", "/old", headers=headers), Peer([big[:600], big[600:]])
    )
    assert peer.status == 404
    assert json.loads(peer.body) == {"detail": "Not Found"}


def lazy_404(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    # PEP 3333 lets start_response wait until the first chunk.
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    yield b"new app: not found"


class Closing:
    closed = 0

    def __init__(self, environ: WSGIEnvironment, start_response: StartResponse) -> None:
        start_response("404 Not Found", [])

    def __iter__(self) -> Any:
        return iter([b"gone"])

    def close(self) -> None:
        Closing.closed += 1


@pytest.mark.parametrize("first", [lazy_404, Closing], ids=["generator", "closing-class"])
def test_wsgi_fallback_learns_a_late_status_and_closes_the_replaced_answer(first: Any) -> None:
    before = Closing.closed
    dispatcher = WSGIDispatcher(default=first, fallback=raw_wsgi)
    response = Client(dispatcher).post("/x", data=b"abc", buffered=True)
    assert (response.status_code, (response.json or {})["body"]) == (200, "abc")
    assert Closing.closed == before + (first is Closing)


def test_wsgi_fallback_passes_other_answers_through_untouched() -> None:
    def streaming(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        yield b"a"  # the status comes with (just before) the first chunk
        start_response("201 Created", [])
        yield b"b"

    dispatcher = WSGIDispatcher(default=lazy_404, fallback=streaming)
    assert Client(dispatcher).get("/", buffered=True).status_code == 201


def test_over_the_limit_the_first_app_reads_the_whole_chunked_body() -> None:
    body = bytes(range(256)) * 5  # over REPLAY_LIMIT, so part of it was read ahead
    dispatcher = WSGIDispatcher(default=raw_wsgi, fallback=lazy_404, replay_limit=REPLAY_LIMIT)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
    }
    response = Client(dispatcher).open(environ_overrides=environ, method="POST", buffered=True)
    assert (response.json or {})["body"] == body.decode("latin-1")


@pytest.mark.parametrize("head", [b"", b"a", b"ab\ncd", b"ab\ncdef\ng"])
def test_prepended_input_reads_like_one_stream(head: bytes) -> None:
    whole = b"ab\ncdef\nghi\n"
    rest = whole[len(head) :]
    assert _Prepended(head, io.BytesIO(rest)).read() == whole
    stream = _Prepended(head, io.BytesIO(rest))
    assert [stream.read(4), stream.read(4), stream.read(100), stream.read(1)] == [
        b"ab\nc",
        b"def\n",
        b"ghi\n",
        b"",
    ]
    assert list(_Prepended(head, io.BytesIO(rest))) == [b"ab\n", b"cdef\n", b"ghi\n"]
    assert _Prepended(head, io.BytesIO(rest)).readline(2) == b"ab"
