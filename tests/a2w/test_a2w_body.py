"""A2W-RECV: the request body as ``http.request`` messages under ASGIToWSGI
(A2W-RECV-01..05). ``StrictInput`` fails the test on any read past the declared length."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from typing import Any

import pytest

from bridgeway._types import Message, Receive, Scope, Send
from tests.support.a2w_driver import StrictInput, call, make_environ, read_body, respond, serving


class Recorder:
    """An ASGI app that reads the body and records every message it received."""

    def __init__(self, then_receive: bool = False) -> None:
        self.messages: list[Message] = []
        self.body = b""
        self.then_receive = then_receive
        self.after: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.body, self.messages = await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await send({"type": "http.response.body", "body": hashlib.sha256(self.body).digest()})
        if self.then_receive:
            self.after.append(await asyncio.wait_for(receive(), 1.0))


def _serve(environ: dict[str, Any], app: Recorder, **settings: Any) -> int:
    with serving(app, lifespan="off", **settings) as adapter:
        return call(adapter, environ).code


@pytest.mark.parametrize(
    ("size", "chunk_size"),
    [
        pytest.param(10, 65536, id="small"),
        pytest.param(100_000, 4096, id="many-chunks"),
        pytest.param(8192, 4096, id="exact-multiple"),
        pytest.param(1, 1, id="one-byte-chunks"),
    ],
)
def test_body_in_bounded_chunks_never_past_content_length(size: int, chunk_size: int) -> None:
    """A2W-RECV-01/02: the joined bodies are the request body; every piece is at most
    chunk_size; only the last has more_body=False; wsgi.input is never read past
    CONTENT_LENGTH (StrictInput raises) and never with a bare read()."""
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    environ = make_environ("POST", body=data)
    stream = environ["wsgi.input"]
    assert isinstance(stream, StrictInput)
    app = Recorder()
    assert _serve(environ, app, chunk_size=chunk_size) == 200
    assert app.body == data
    assert stream.violations == []
    assert all(0 < n <= chunk_size for n in stream.reads)
    assert sum(stream.reads) == size
    assert all(len(m["body"]) <= chunk_size for m in app.messages)
    assert [m["more_body"] for m in app.messages][-1] is False
    assert all(m["more_body"] for m in app.messages[:-1])
    assert len(app.messages) == -(-size // chunk_size)


def test_reads_happen_on_demand() -> None:
    """A2W-RECV-01: bytes are read only when the app awaits receive(): an app that reads
    one message and answers leaves the rest of wsgi.input untouched."""
    environ = make_environ("POST", body=b"x" * 10_000)
    stream = environ["wsgi.input"]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert len(message["body"]) == 1000
        await respond(send)

    with serving(app, lifespan="off", chunk_size=1000) as adapter:
        assert call(adapter, environ).code == 200
    assert stream.reads == [1000]


@pytest.mark.parametrize(
    "environ_args",
    [
        pytest.param({}, id="GET"),
        pytest.param({"method": "POST", "content_length": "0"}, id="content-length-0"),
        pytest.param({"method": "POST", "content_length": ""}, id="content-length-empty"),
    ],
)
def test_bodyless_request_gets_one_empty_message(environ_args: dict[str, Any]) -> None:
    """A2W-RECV-04/03: no body means exactly one http.request with body=b"" and
    more_body=False, never a disconnect first and never a read of the socket."""
    environ = make_environ(**environ_args)
    stream = environ["wsgi.input"]
    app = Recorder()
    assert _serve(environ, app) == 200
    assert app.messages == [{"type": "http.request", "body": b"", "more_body": False}]
    assert stream.reads == []


def test_input_terminated_reads_to_eof() -> None:
    """A2W-RECV-03: no CONTENT_LENGTH with wsgi.input_terminated (a chunked upload):
    read in bounded chunks until b""."""
    data = b"chunked!" * 5000
    terminated: dict[str, Any] = {"wsgi.input_terminated": True}
    environ = make_environ("POST", stream=io.BytesIO(data), **terminated)
    environ.pop("CONTENT_LENGTH", None)
    app = Recorder()
    assert _serve(environ, app, chunk_size=4096) == 200
    assert app.body == data
    assert all(len(m["body"]) <= 4096 for m in app.messages)
    assert app.messages[-1]["more_body"] is False


def test_no_length_without_input_terminated_is_empty() -> None:
    """A2W-RECV-03: no CONTENT_LENGTH and no wsgi.input_terminated: an empty body, and
    wsgi.input (which would block on a real socket) is never read."""
    stream = StrictInput(b"", limit=0)
    environ = make_environ("POST", stream=stream)
    app = Recorder()
    assert _serve(environ, app) == 200
    assert app.body == b""
    assert stream.reads == []


def test_short_body_ends_as_disconnect() -> None:
    """A2W-RECV-05: b"" before CONTENT_LENGTH means the client left: receive() returns
    http.disconnect, never a truncated body marked complete, and nothing spins."""
    stream = StrictInput(b"0123456789", limit=1000)
    environ = make_environ("POST", stream=stream, content_length="1000")
    app = Recorder()
    began = time.monotonic()
    _serve(environ, app, chunk_size=4)
    assert time.monotonic() - began < 2.0
    assert app.messages[-1] == {"type": "http.disconnect"}
    assert all(m["more_body"] for m in app.messages[:-1])
    assert b"".join(m["body"] for m in app.messages[:-1]) == b"0123456789"
    assert len(stream.reads) <= 5  # 4 + 4 + 2 + the b"" that told: no spinning


def test_short_reads_carry_on() -> None:
    """A2W-RECV-05: read(n) returning fewer than n bytes is normal (waitress, gunicorn):
    the adapter keeps reading until the declared length."""

    class Trickle(StrictInput):
        def read(self, size: int = -1) -> bytes:
            return super().read(min(size, 3))

    stream = Trickle(b"abcdefghij")
    environ = make_environ("POST", stream=stream, content_length="10")
    app = Recorder()
    assert _serve(environ, app) == 200
    assert app.body == b"abcdefghij"
    assert app.messages[-1]["more_body"] is False
    assert stream.violations == []


def test_receive_after_body_blocks_until_the_response_is_complete() -> None:
    """A2W-RECV-06: once the body is read, receive() waits while the response is in
    progress (a listener must not see a premature disconnect), then answers
    http.disconnect once the final body was sent."""
    results: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            results.append(await asyncio.wait_for(receive(), 0.2))
        except asyncio.TimeoutError:
            results.append("blocked")
        await respond(send)
        results.append(await asyncio.wait_for(receive(), 1.0))
        results.append(await asyncio.wait_for(receive(), 1.0))

    with serving(app, lifespan="off") as adapter:
        assert call(adapter).code == 200
    assert results == ["blocked", {"type": "http.disconnect"}, {"type": "http.disconnect"}]


def test_slow_input_does_not_freeze_the_loop() -> None:
    """A2W-RECV-08: a blocking wsgi.input read runs off the loop: the app's timeout on
    receive() fires after about 0.2 s, not after the 1 s read."""

    class Slow:
        def read(self, size: int) -> bytes:
            time.sleep(1.0)
            return b"x"

    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        began = time.monotonic()
        try:
            await asyncio.wait_for(receive(), 0.2)
            outcome.append("read")
        except asyncio.TimeoutError:
            outcome.append(f"timeout after {time.monotonic() - began:.1f}")
        await respond(send)

    environ = make_environ("POST", stream=Slow(), content_length="1")
    with serving(app, lifespan="off") as adapter:
        assert call(adapter, environ).code == 200
    assert outcome == ["timeout after 0.2"]
