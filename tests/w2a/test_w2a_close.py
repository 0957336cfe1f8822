"""close() on the response iterable: exactly once, in the worker thread that ran the app
(W2A-RESP-13)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from bridgeway import WSGIToASGI
from bridgeway._types import Environ, Message, StartResponse
from tests.support.w2a_driver import CHUNKED, Peer, call, make_scope, wait_for, wait_thread_event

pytestmark = pytest.mark.anyio


class Recorder:
    """A WSGI app whose response iterable records the threads of the app call, of every
    next() and of every close() call."""

    def __init__(
        self,
        body: Callable[[Recorder], Iterator[bytes]],
        *,
        start: bool = True,
        headers: list[tuple[str, str]] | None = None,
        close_raises: bool = False,
    ) -> None:
        self.body = body
        self.start = start
        self.headers = headers or []
        self.close_raises = close_raises
        self.app_thread: int | None = None
        self.next_threads: list[int] = []
        self.close_threads: list[int] = []
        self.sends_at_close: int | None = None
        self.peer: Peer | None = None
        self.streaming = threading.Event()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Recorder:
        self.app_thread = threading.get_ident()
        if self.start:
            start_response("200 OK", self.headers)
        self._iter = self.body(self)
        return self

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        self.next_threads.append(threading.get_ident())
        return next(self._iter)

    def close(self) -> None:
        self.close_threads.append(threading.get_ident())
        if self.peer is not None:
            self.sends_at_close = len(self.peer.messages)
        if self.close_raises:
            raise OSError("close failed")

    def assert_closed_once_in_app_thread(self) -> None:
        assert self.app_thread is not None
        assert self.close_threads == [self.app_thread]
        assert set(self.next_threads) <= {self.app_thread}
        assert self.app_thread != threading.get_ident()  # never the event loop's thread


def chunks(n: int) -> Callable[[Recorder], Iterator[bytes]]:
    def body(rec: Recorder) -> Iterator[bytes]:
        for i in range(n):
            yield b"chunk %d\n" % i

    return body


def endless(rec: Recorder) -> Iterator[bytes]:
    i = 0
    while True:
        rec.streaming.set()
        yield b"tick %d\n" % i
        i += 1


async def run(rec: Recorder, peer: Peer | None = None, **settings: Any) -> Peer:
    peer = peer if peer is not None else Peer()
    rec.peer = peer
    await call(WSGIToASGI(rec, **settings), make_scope(), peer)
    return peer


@pytest.mark.parametrize("strict", [False, True], ids=["fast-close", "close-after-send"])
async def test_close_after_success(strict: bool) -> None:
    rec = Recorder(chunks(3))
    peer = await run(rec, close_after_send=strict)
    assert peer.complete
    assert peer.body_messages == 3
    rec.assert_closed_once_in_app_thread()
    if strict:  # close() runs after the last send() returned (W2A-RESP-13, opt-in)
        assert rec.sends_at_close == len(peer.messages)
    else:  # the last chunk was handed to the loop; its send() may still be pending
        assert rec.sends_at_close is not None
        assert rec.sends_at_close >= len(peer.messages) - 1


async def test_close_after_one_chunk_list_response() -> None:
    rec = Recorder(chunks(1))
    peer = await run(rec)
    assert peer.body == b"chunk 0\n"
    rec.assert_closed_once_in_app_thread()


def failing_before_headers(rec: Recorder) -> Iterator[bytes]:
    raise ValueError("app failed at its first next()")
    yield b""  # pragma: no cover


def failing_after_headers(rec: Recorder) -> Iterator[bytes]:
    yield b"one"
    yield b"two"
    raise ValueError("app failed while streaming")


async def test_close_after_app_exception_before_headers() -> None:
    rec = Recorder(failing_before_headers)
    peer = Peer()
    with pytest.raises(ValueError, match="first next"):
        await run(rec, peer)
    assert peer.messages == []  # the server answers 500 (W2A-RESP-12)
    rec.assert_closed_once_in_app_thread()


async def test_close_after_exception_during_iteration() -> None:
    rec = Recorder(failing_after_headers)
    peer = Peer()
    with pytest.raises(ValueError, match="while streaming"):
        await run(rec, peer)
    assert peer.body == b"onetwo"
    assert peer.final_messages == 0
    rec.assert_closed_once_in_app_thread()


async def test_close_after_lazy_start_response_fails() -> None:
    """A generator app whose start_response call (inside the generator) raises."""
    closes: list[int] = []
    app_threads: list[int] = []

    class App:
        def __call__(self, environ: Environ, start_response: StartResponse) -> App:
            app_threads.append(threading.get_ident())
            self.start_response = start_response
            return self

        def __iter__(self) -> Iterator[bytes]:
            self.start_response("200 OK", [("Bad Name", "x")])
            yield b"never"

        def close(self) -> None:
            closes.append(threading.get_ident())

    peer = Peer()
    with pytest.raises(ValueError, match="token"):
        await call(WSGIToASGI(App()), make_scope(), peer)
    assert peer.messages == []
    assert closes == app_threads


async def test_close_after_client_disconnect() -> None:
    rec = Recorder(endless)
    peer = await run(rec, Peer(disconnect_after=3))
    assert peer.final_messages == 0
    rec.assert_closed_once_in_app_thread()


async def test_close_after_send_raises_oserror() -> None:
    rec = Recorder(endless)
    peer = await run(rec, Peer(raise_after=2))
    assert peer.body_messages == 2
    rec.assert_closed_once_in_app_thread()


async def test_close_after_cancellation_of_request_task() -> None:
    rec = Recorder(endless)
    peer = Peer(send_delay=0.001)
    rec.peer = peer
    adapter = WSGIToASGI(rec)
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, adapter, make_scope(), peer)
        await wait_thread_event(rec.streaming)
        assert peer.first_body is not None
        with anyio.fail_after(5):
            await peer.first_body.wait()
        tg.cancel_scope.cancel()
    # the cancelled call waited (shielded) for the thread to close the iterable
    rec.assert_closed_once_in_app_thread()
    assert adapter.pool().busy == 0


async def test_close_after_cancellation_while_reading_body() -> None:
    reading = threading.Event()
    closes: list[int] = []
    errors: list[BaseException] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b""

        def close(self) -> None:
            closes.append(threading.get_ident())

    def app(environ: Environ, start_response: StartResponse) -> Body:
        reading.set()
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            errors.append(exc)
        start_response("200 OK", [])
        return Body()

    peer = Peer([b"part"], truncate=True, hold=True)
    adapter = WSGIToASGI(app)
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, adapter, make_scope("POST", headers=CHUNKED), peer)
        await wait_thread_event(reading)
        await wait_for(lambda: peer.receive_calls >= 2)
        tg.cancel_scope.cancel()
    assert len(closes) == 1
    assert len(errors) == 1
    assert adapter.pool().busy == 0


async def test_close_raising_propagates_after_the_whole_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As a2wsgi: close()'s exception leaves the ASGI call once the response is whole."""
    rec = Recorder(chunks(2), close_raises=True)
    peer = Peer()
    with (
        caplog.at_level(logging.ERROR, logger="bridgeway"),
        pytest.raises(OSError, match="close failed"),
    ):
        await run(rec, peer)
    assert peer.complete
    assert peer.body == b"chunk 0\nchunk 1\n"
    rec.assert_closed_once_in_app_thread()
    assert caplog.records == []


async def test_close_raising_is_logged_and_response_unchanged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder(chunks(2), close_raises=True)
    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        peer = await run(rec, propagate_exceptions=False)
    assert peer.status == 200
    assert peer.complete
    assert peer.body == b"chunk 0\nchunk 1\n"
    rec.assert_closed_once_in_app_thread()
    assert any("close()" in r.getMessage() for r in caplog.records)


async def test_close_after_send_false_closes_while_the_last_send_is_pending() -> None:
    """The default (close_after_send=False, W2A-RESP-13): close() runs in the app's
    thread without waiting for the last send() to return. The server's send() of the
    final message here waits for close() itself, which only completes if the adapter
    does not wait for that send first (with close_after_send=True it would wait for
    ever: see the next test)."""
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"one"
            yield b"two"

        def close(self) -> None:
            closed.set()

    def app(environ: Environ, start_response: StartResponse) -> Body:
        start_response("200 OK", [])
        return Body()

    gave_up: list[bool] = []

    async def hold_final_until_closed(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            try:
                await wait_thread_event(closed, seconds=5)
            except TimeoutError:  # an OSError: the adapter would take it for a disconnect
                gave_up.append(True)

    peer = Peer(on_send=hold_final_until_closed)
    await call(WSGIToASGI(app), make_scope(), peer, seconds=10)  # the default
    assert gave_up == []
    assert peer.body == b"onetwo"
    assert peer.complete


async def test_close_after_send_true_waits_for_the_last_send() -> None:
    """The opt-in strict order (close_after_send=True): while the final send() is
    pending, close() has not run."""
    rec = Recorder(chunks(2))
    seen_at_final: list[int] = []

    async def note_final(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            await anyio.sleep(0.05)  # give a close() that did not wait time to run
            seen_at_final.append(len(rec.close_threads))

    peer = Peer(on_send=note_final)
    await run(rec, peer, close_after_send=True)
    assert seen_at_final == [0]
    assert len(rec.close_threads) == 1


@pytest.mark.parametrize("strict", [False, True], ids=["fast-close", "close-after-send"])
async def test_asgi_call_returns_only_after_close_returned(strict: bool) -> None:
    """Either way the ASGI call returns only once close() has returned (W2A-RESP-13):
    close() here outlasts the response, blocked until the test releases it, and the
    call is still running meanwhile."""
    final_sent = threading.Event()
    release = threading.Event()
    finished: list[int] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"one"
            yield b"two"

        def close(self) -> None:
            final_sent.wait(5)
            release.wait(5)
            finished.append(threading.get_ident())

    def app(environ: Environ, start_response: StartResponse) -> Body:
        start_response("200 OK", [])
        return Body()

    async def note_final(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            final_sent.set()

    returned: list[int] = []
    peer = Peer(on_send=note_final)

    async def request() -> None:
        await call(WSGIToASGI(app, close_after_send=strict), make_scope(), peer, seconds=10)
        returned.append(len(finished))

    async with anyio.create_task_group() as tg:
        tg.start_soon(request)
        await wait_thread_event(final_sent)
        for _ in range(50):  # the loop's turns: an adapter not waiting for close() returns
            await anyio.lowlevel.checkpoint()
        assert returned == []  # close() is still running: the call has not returned
        release.set()
    assert returned == [1]
    assert peer.complete
    assert peer.body == b"onetwo"
