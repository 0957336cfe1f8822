"""W2A-INPUT: ``wsgi.input`` under WSGIToASGI, in process (the live part: tests/conformance)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import anyio
import pytest

from bridgeway import ClientDisconnected, WSGIToASGI
from bridgeway._types import Environ, StartResponse
from tests.support.w2a_driver import CHUNKED, Peer, call, make_scope, wait_for

pytestmark = pytest.mark.anyio

Reader = Callable[[Any], Any]


class ReaderApp:
    """Runs ``reader(wsgi.input)`` and keeps its result (or the exception it raised)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.result: Any = None
        self.error: BaseException | None = None
        self.environ: Environ | None = None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        self.environ = environ
        try:
            self.result = self.reader(environ["wsgi.input"])
        except Exception as exc:
            self.error = exc
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]


async def run_reader(
    reader: Reader, chunks: Iterable[bytes], *, length: int | None = None, **peer_kw: Any
) -> tuple[ReaderApp, Peer]:
    app = ReaderApp(reader)
    # an HTTP/1.1 request has a body only with Content-Length or Transfer-Encoding
    headers = (
        [(b"transfer-encoding", b"chunked")]
        if length is None
        else [(b"content-length", str(length).encode())]
    )
    peer = await call(WSGIToASGI(app), make_scope("POST", headers=headers), Peer(chunks, **peer_kw))
    if not peer.truncate:
        assert peer.status == 200
    return app, peer


def split(data: bytes, *sizes: int) -> list[bytes]:
    """Cut ``data`` into pieces of the given sizes (the rest is the last piece)."""
    parts, pos = [], 0
    for size in sizes:
        parts.append(data[pos : pos + size])
        pos += size
    parts.append(data[pos:])
    return parts


def read_n_loop(n: int) -> Reader:
    def reader(stream: Any) -> list[int]:
        lengths = []
        while True:
            data = stream.read(n)
            lengths.append(len(data))
            if not data:
                return lengths

    return reader


BODY = bytes(range(256)) * 4  # 1024 bytes with varied content


async def test_input_01_read_n_exact_across_messages() -> None:
    body = bytes(range(100))
    app, _ = await run_reader(read_n_loop(10), [body[i : i + 1] for i in range(100)], length=100)
    assert app.result == [10] * 10 + [0]


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param((1, 2, 3, 500), id="W2A-INPUT-01-small-then-large"),
        pytest.param((7, 7, 7, 7), id="W2A-INPUT-01-odd"),
        pytest.param((1000,), id="W2A-INPUT-01-one-big"),
    ],
)
async def test_input_01_read_n_sizes(pieces: tuple[int, ...]) -> None:
    def exact(stream: Any) -> list[bytes]:
        return [stream.read(33) for _ in range(32)]

    app, _ = await run_reader(exact, split(BODY, *pieces))
    got = app.result
    assert [len(x) for x in got] == [33] * 31 + [1]
    assert b"".join(got) == BODY


@pytest.mark.parametrize(
    "call_read",
    [
        pytest.param(lambda s: s.read(), id="W2A-INPUT-02-read"),
        pytest.param(lambda s: s.read(None), id="W2A-INPUT-02-read-None"),
        pytest.param(lambda s: s.read(-1), id="W2A-INPUT-02-read-minus-1"),
        pytest.param(lambda s: s.read(5) + s.read(), id="W2A-INPUT-02-partial-then-rest"),
    ],
)
async def test_input_02_read_all(call_read: Reader) -> None:
    app, _ = await run_reader(call_read, split(BODY, 100, 300))
    assert hashlib.sha256(app.result).digest() == hashlib.sha256(BODY).digest()


async def test_input_02_read_zero_never_waits() -> None:
    app, peer = await run_reader(lambda s: s.read(0), [b"abc"])
    assert app.result == b""
    assert peer.receive_calls == 0


LINES = b"first line\r\nsecond\n\nthird \xc3\xa9 line\nno newline at end"


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param((len(LINES),), id="one-message"),
        pytest.param((11,), id="W2A-INPUT-03-split-inside-crlf"),
        pytest.param((27,), id="W2A-INPUT-03-split-inside-utf8"),
        pytest.param(tuple([1] * len(LINES)), id="W2A-INPUT-03-byte-by-byte"),
    ],
)
async def test_input_03_readline_spans_messages(pieces: tuple[int, ...]) -> None:
    def reader(stream: Any) -> list[bytes]:
        lines = []
        while line := stream.readline():
            lines.append(line)
        lines.append(stream.readline())
        return lines

    app, _ = await run_reader(reader, split(LINES, *pieces))
    assert app.result == [*LINES.splitlines(keepends=True), b""]


async def test_input_03_readline_limit() -> None:
    def reader(stream: Any) -> list[bytes]:
        return [stream.readline(4), stream.readline(4), stream.readline(100), stream.readline(0)]

    app, _ = await run_reader(reader, split(b"abcdefgh\nxy\n", 2, 3))
    assert app.result == [b"abcd", b"efgh", b"\n", b""]


@pytest.mark.parametrize(
    "reader",
    [
        pytest.param(lambda s: s.readlines(), id="W2A-INPUT-04-readlines"),
        pytest.param(lambda s: list(s), id="W2A-INPUT-04-iteration"),
        pytest.param(lambda s: s.readlines(0), id="W2A-INPUT-04-readlines-hint-0"),
    ],
)
async def test_input_04_readlines_and_iteration(reader: Reader) -> None:
    app, _ = await run_reader(reader, split(LINES, 5, 13, 1))
    assert app.result == LINES.splitlines(keepends=True)


async def test_input_04_readlines_hint_stops_early() -> None:
    app, _ = await run_reader(lambda s: s.readlines(3), [b"ab\ncd\nef\n"])
    assert app.result == [b"ab\n"]


async def test_input_05_eof_is_sticky_and_never_reads_beyond() -> None:
    def reader(stream: Any) -> list[bytes]:
        return [stream.read(), *(stream.read(1) for _ in range(10)), stream.readline()]

    app, peer = await run_reader(reader, [b"abc", b"def"], length=6)
    assert app.result == [b"abcdef"] + [b""] * 11
    # exactly the two body messages were received: nothing past more_body=False
    assert peer.receive_calls == 2


async def test_input_06_streams_one_message_at_a_time() -> None:
    """The app starts before any body message was received (HTTP-01 too), and reads
    are served at most a few messages ahead of what they need."""
    pulled: list[int] = []
    log: list[tuple[int, int]] = []
    received_at_start: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(20):
            pulled.append(i)
            yield bytes([i]) * 10

    def reader(stream: Any) -> None:
        log.append((-1, len(pulled)))
        received_at_start.append(peer.receive_calls)
        for i in range(20):
            stream.read(10)
            log.append((i, len(pulled)))

    peer = Peer(chunks())
    app = ReaderApp(reader)
    await call(WSGIToASGI(app), make_scope("POST", headers=CHUNKED), peer)
    assert app.error is None
    # The Peer pre-fetches one chunk from the generator to know more_body, so the
    # number pulled is at most the messages received + 1.
    assert log[0] == (-1, 1)
    assert received_at_start == [0]  # the app ran before any body message was received
    assert peer.receive_calls == 20
    # wsgi.input may be handed up to _PREFETCH (4) messages ahead of its reads, never
    # more (W2A-INPUT-06: "a few server chunks").
    for i, seen in log[1:]:
        assert seen <= i + 6, (i, seen)


async def test_input_06_read_ahead_is_bounded_while_the_app_waits() -> None:
    """An app that stops reading makes the adapter stop calling receive() after a few
    messages, so flow control pushes back on the client (W2A-INPUT-06 b)."""
    parked = threading.Event()
    release = threading.Event()

    def reader(stream: Any) -> int:
        first = stream.read(10)
        parked.set()
        release.wait(10)
        return len(first) + len(stream.read())

    app = ReaderApp(reader)
    peer = Peer(bytes([i]) * 10 for i in range(100))
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, WSGIToASGI(app), make_scope("POST", headers=CHUNKED), peer)
        await wait_for(parked.is_set)
        # a window in which an unbounded reader would have taken all 100 messages
        await anyio.sleep(0.05)
        assert peer.receive_calls <= 1 + 5  # the one read, plus "a few server chunks"
        release.set()
    assert app.result == 1000
    assert peer.receive_calls == 100


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([b"a" * 1000, b"b" * 10, b"", b"c"], id="W2A-INPUT-07-chunked"),
        pytest.param([b"", b"xyz"], id="W2A-INPUT-07-empty-first-message"),
    ],
)
async def test_input_07_no_content_length_arrives_whole(chunks: list[bytes]) -> None:
    app = ReaderApp(lambda s: s.read())
    scope = make_scope("POST", headers=[(b"transfer-encoding", b"chunked")])
    await call(WSGIToASGI(app), scope, Peer(chunks))
    assert app.environ is not None
    assert "CONTENT_LENGTH" not in app.environ
    assert app.environ["wsgi.input_terminated"] is True
    assert app.result == b"".join(chunks)


async def test_input_07_werkzeug_reads_chunked_upload() -> None:
    """Without wsgi.input_terminated Werkzeug would give an empty body."""
    from werkzeug.wrappers import Request, Response

    seen: list[bytes] = []

    @Request.application
    def app(request: Request) -> Response:
        seen.append(request.get_data())
        return Response("ok")

    scope = make_scope("POST", headers=[(b"transfer-encoding", b"chunked")])
    peer = await call(WSGIToASGI(app), scope, Peer([b"hello ", b"world"]))
    assert peer.status == 200
    assert seen == [b"hello world"]


async def test_input_08_no_body_read_returns_at_once() -> None:
    app, peer = await run_reader(lambda s: (s.read(), s.read(10), s.readline()), [], length=0)
    assert app.result == (b"", b"", b"")
    assert peer.receive_calls <= 1


async def test_input_08_unread_body_never_deadlocks() -> None:
    app = ReaderApp(lambda s: None)
    peer = Peer(b"x" * 65536 for _ in range(100))
    await call(WSGIToASGI(app), make_scope("POST", headers=CHUNKED), peer)
    assert peer.status == 200
    assert peer.body == b"done"
    assert peer.receive_calls == 0


@pytest.mark.parametrize(
    "reader",
    [
        pytest.param(lambda s: s.read(), id="W2A-INPUT-09-read"),
        pytest.param(lambda s: s.read(1000), id="W2A-INPUT-09-read-n"),
        pytest.param(lambda s: s.readline(), id="W2A-INPUT-09-readline"),
        pytest.param(lambda s: list(s), id="W2A-INPUT-09-iter"),
    ],
)
async def test_input_09_truncated_body_raises(reader: Reader) -> None:
    later: list[BaseException] = []

    def wrapped(stream: Any) -> Any:
        try:
            return reader(stream)
        finally:
            for again in (stream.read, stream.readline):
                try:
                    again()
                except ClientDisconnected as exc:
                    later.append(exc)

    app, peer = await run_reader(wrapped, [b"0123456789"], length=1000, truncate=True)
    assert isinstance(app.error, ClientDisconnected)
    assert isinstance(app.error, OSError)
    assert len(later) == 2
    assert peer.messages == []  # the client is gone: nothing is sent to it


async def test_input_10_blocked_read_wakes_on_disconnect() -> None:
    started = threading.Event()

    def reader(stream: Any) -> bytes:
        started.set()
        return bytes(stream.read())

    app = ReaderApp(reader)
    adapter = WSGIToASGI(app, max_threads=2)
    peer = Peer([b"half"], truncate=True, hold=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, adapter, make_scope("POST", headers=CHUNKED), peer)
        await wait_for(lambda: peer.receive_calls == 2)  # the read is blocked now
        with anyio.fail_after(1):
            peer.disconnect()
            await wait_for(lambda: app.error is not None, seconds=1)
    assert isinstance(app.error, ClientDisconnected)
    assert adapter.pool().busy == 0


async def test_input_11_read_from_other_thread_after_response() -> None:
    kept: list[Any] = []
    app = ReaderApp(lambda s: kept.append(s))
    await call(WSGIToASGI(app), make_scope("POST", headers=CHUNKED), Peer([b"unread", b"body"]))
    results: list[Any] = []

    def late_read() -> None:
        try:
            results.append(kept[0].read())
        except OSError as exc:
            results.append(exc)

    thread = threading.Thread(target=late_read)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "a read after the response hung"
    assert results[0] == b"" or isinstance(results[0], ClientDisconnected)


async def test_input_11_read_from_helper_thread_during_request() -> None:
    def reader(stream: Any) -> bytes:
        out: list[bytes] = []
        helper = threading.Thread(target=lambda: out.append(stream.read()))
        helper.start()
        helper.join(5)
        return out[0]

    app, _ = await run_reader(reader, [b"from ", b"helper"])
    assert app.result == b"from helper"


async def test_input_12_close_is_harmless() -> None:
    def reader(stream: Any) -> tuple[bool, bytes]:
        stream.close()
        return stream.seekable(), stream.read()

    app, peer = await run_reader(reader, [b"still readable"])
    assert app.result == (False, b"still readable")
    assert peer.complete


async def test_http_01_expect_continue_app_that_never_reads() -> None:
    """The first receive() happens at the app's first read: an app answering 413 at once
    makes the server skip the upload (uvicorn sends 100 Continue on the first receive)."""
    calls: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        calls.append(1)
        start_response("413 Content Too Large", [("Content-Type", "text/plain")])
        return [b"too large"]

    headers = [(b"expect", b"100-continue"), (b"content-length", str(2**30).encode())]
    peer = Peer(b"x" * 65536 for _ in range(16384))
    await call(WSGIToASGI(app), make_scope("POST", headers=headers), peer)
    assert calls == [1]
    assert peer.status == 413
    assert peer.body == b"too large"
    assert peer.receive_calls == 0


async def test_http_06_transfer_encoding_overrides_content_length() -> None:
    app = ReaderApp(lambda s: s.read())
    headers = [(b"content-length", b"3"), (b"transfer-encoding", b"chunked")]
    await call(WSGIToASGI(app), make_scope("POST", headers=headers), Peer([b"12345", b"678"]))
    assert app.environ is not None
    assert "CONTENT_LENGTH" not in app.environ
    assert app.environ["HTTP_TRANSFER_ENCODING"] == "chunked"
    assert app.result == b"12345678"  # never trimmed to the content-length header
