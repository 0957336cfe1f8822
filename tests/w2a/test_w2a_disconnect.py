"""Client disconnect (W2A-RESP-14, in process; the live part is in the conformance suite)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anyio
import pytest

from bridgeway import WSGIToASGI
from bridgeway._types import Environ, Message, StartResponse
from tests.support.w2a_driver import (
    CHUNKED,
    Peer,
    call,
    content_length,
    make_scope,
    wait_for,
    wait_thread_event,
)

pytestmark = pytest.mark.anyio


class Endless:
    """An endless streaming app; counts next() calls and records when it was closed."""

    def __init__(self, read_body: bool = False) -> None:
        self.read_body = read_body
        self.produced = 0
        self.produced_at_disconnect: int | None = None
        self.closed = 0
        self.streaming = threading.Event()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        if self.read_body:
            environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        try:
            while True:
                self.produced += 1
                self.streaming.set()
                yield b"data: %d\n\n" % self.produced
        finally:
            self.closed += 1


def on_disconnect(app: Endless, peer: Peer) -> None:
    """Record how far the generator had got when the client left."""
    original = peer.disconnect

    def disconnect() -> None:
        if app.produced_at_disconnect is None:
            app.produced_at_disconnect = app.produced
        original()

    peer.disconnect = disconnect  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("method", "headers", "read_body", "body"),
    [
        pytest.param("GET", [], False, [], id="W2A-RESP-14-get"),
        pytest.param("GET", [], True, [], id="W2A-RESP-14-get-input-read"),
        pytest.param("POST", CHUNKED, True, [b"form", b"=1"], id="W2A-RESP-14-body-read"),
        pytest.param(
            "POST", content_length(6), False, [b"form=1"], id="W2A-RESP-14-post-body-unread"
        ),
        pytest.param("POST", CHUNKED, False, [b"a", b"b"], id="W2A-RESP-14-chunked-unread"),
    ],
)
async def test_endless_generator_stops_within_one_chunk(
    method: str, headers: list[tuple[bytes, bytes]], read_body: bool, body: list[bytes]
) -> None:
    app = Endless(read_body)
    adapter = WSGIToASGI(app, max_threads=1)
    peer = Peer(body, disconnect_after=5)
    on_disconnect(app, peer)
    await call(adapter, make_scope(method, headers=headers), peer)
    assert app.closed == 1
    assert app.produced_at_disconnect is not None
    # One chunk may already be computed ahead (backpressure allows one in flight) and one
    # more next() may be running when the disconnect is seen: never more.
    assert app.produced - app.produced_at_disconnect <= 2
    assert peer.body_messages <= 6
    assert peer.final_messages == 0
    # the thread is free again: the pool is idle and a second request is served
    assert adapter.pool().busy == 0
    second = Peer(disconnect_after=1)
    with anyio.fail_after(5):
        await call(adapter, make_scope(), second)
    assert app.closed == 2


async def test_slow_generator_noticed_between_chunks() -> None:
    """A generator that yields rarely: the watcher sees http.disconnect while the app is
    busy, and the next chunk is the last one pulled."""
    release = threading.Event()
    produced: list[int] = []
    closed: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for i in range(100):
                produced.append(i)
                yield b"event %d\n" % i
                if i == 0:
                    release.wait(10)
        finally:
            closed.append(1)

    adapter = WSGIToASGI(app, max_threads=1)
    peer = Peer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, adapter, make_scope(), peer)
        assert peer.first_body is not None
        with anyio.fail_after(5):
            await peer.first_body.wait()
        peer.disconnect()
        # the adapter's watcher takes the disconnect before the app yields again
        # (receive() returned it to the watcher, which marks the request halted in the
        # same step, before this task runs again)
        await wait_for(lambda: peer.disconnect_seen)
        release.set()
    assert closed == [1]
    assert len(produced) <= 2
    assert adapter.pool().busy == 0


async def test_send_oserror_stops_generator() -> None:
    app = Endless()
    adapter = WSGIToASGI(app, max_threads=1)
    peer = Peer(raise_after=3)
    await call(adapter, make_scope(), peer)
    assert app.closed == 1
    # Three sends succeed, the fourth raises. The thread runs at most two chunks ahead
    # of send() (W2A-RESP-10) plus the one it has just pulled: when the loop is slow to
    # answer (a busy machine), chunks 5 and 6 exist before the failure is seen.
    assert app.produced <= 6
    assert adapter.pool().busy == 0


async def test_disconnect_watch_can_be_turned_off() -> None:
    """With watch_disconnect=False the receive() side is not watched: only send()
    failures stop the app (shows that the watcher is what the first test relies on)."""
    app = Endless()
    adapter = WSGIToASGI(app, max_threads=1, watch_disconnect=False)
    peer = Peer(disconnect_after=3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, adapter, make_scope(), peer)
        await wait_thread_event(app.streaming)
        await wait_for(lambda: app.produced >= 50)
        assert app.closed == 0
        tg.cancel_scope.cancel()
    assert app.closed == 1


async def test_server_answering_receive_again_after_the_body_is_not_spun_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server whose receive() keeps returning ``http.request`` after the body ended
    breaks ASGI-www §Request; the disconnect listener must stop listening (and say
    so), not call receive() in a loop for the whole response."""
    calls = 0

    async def receive() -> dict[str, object]:
        nonlocal calls
        calls += 1
        await anyio.lowlevel.checkpoint()
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            sent.append(message.get("body", b""))
            await anyio.sleep(0.02)  # a slow consumer: time for a spinning listener

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for i in range(5):
            yield b"%d" % i

    with anyio.fail_after(10):
        await WSGIToASGI(app)(make_scope(), receive, send)
    assert b"".join(sent) == b"01234"
    assert calls <= 3
    assert "broke the receive() contract" in caplog.text


async def test_unknown_message_while_reading_the_body_is_an_error_not_a_short_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    messages: Iterator[dict[str, object]] = iter(
        [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.bogus"}]
    )

    async def receive() -> dict[str, object]:
        return next(messages)

    peer = Peer()
    seen: list[object] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        try:
            seen.append(environ["wsgi.input"].read())
        except Exception as exc:
            seen.append(exc)
            raise
        start_response("200 OK", [])
        return [b"read"]

    with anyio.fail_after(10), pytest.raises(OSError, match="body") as raised:
        await WSGIToASGI(app)(make_scope("POST", headers=CHUNKED), receive, peer.send)
    assert len(seen) == 1
    assert isinstance(seen[0], OSError)
    # The app's error propagates (W2A-RESP-12); the server answers 500.
    assert raised.value is seen[0]
    assert peer.messages == []
    assert "'http.bogus' while the body was being read" in caplog.text
