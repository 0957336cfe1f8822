"""W2A-RESP: start_response, write() and the response iterable under WSGIToASGI
(in process; the live part is in the conformance suite)."""

from __future__ import annotations

import io
import logging
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import anyio
import pytest

from bridgeway import WSGIToASGI
from bridgeway._types import Environ, StartResponse
from tests.support.w2a_driver import Peer, call, make_scope, refused, wait_thread_event

pytestmark = pytest.mark.anyio

App = Callable[[Environ, StartResponse], Iterable[bytes]]


def simple(
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    body: Iterable[bytes] = (b"hello",),
) -> App:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, [] if headers is None else headers)
        return body

    return app


class Catching:
    """Calls start_response with the given arguments; records what it raised, then
    re-raises (so the adapter's handling of the error is visible too)."""

    def __init__(self, status: Any, headers: Any) -> None:
        self.status = status
        self.headers = headers
        self.raised: BaseException | None = None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            start_response(self.status, self.headers)
        except Exception as exc:
            self.raised = exc
            raise
        return [b"should not be seen"]


def assert_generic_500(peer: Peer) -> None:
    assert peer.status == 500
    assert peer.complete
    assert peer.body == b"Internal Server Error"
    assert b"Traceback" not in peer.body


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(200, TypeError, id="W2A-RESP-01-int"),
        pytest.param("2000 X", ValueError, id="W2A-RESP-01-four-digits"),
        pytest.param("200 OK\r\n", ValueError, id="W2A-RESP-01-crlf"),
        pytest.param("099 Low", ValueError, id="W2A-RESP-01-below-100"),
        pytest.param("OK", ValueError, id="W2A-RESP-01-no-code"),
    ],
)
async def test_resp_01_bad_status_raises_in_app(status: Any, error: type[Exception]) -> None:
    app = Catching(status, [])
    outcome = await refused(app)
    assert isinstance(app.raised, error)
    assert outcome.raised is app.raised
    assert_generic_500(outcome.peer)


async def test_resp_01_custom_reason_keeps_code() -> None:
    peer = await call(WSGIToASGI(simple("299 Custom")))
    assert peer.status == 299
    assert peer.body == b"hello"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(("X-A", "v\r\nSet-Cookie: p=1"), id="W2A-RESP-02-crlf-injection"),
        pytest.param(("X-A", "v\nSet-Cookie: p=1"), id="W2A-RESP-02-lf-injection"),
        pytest.param(("X-A", "v\x00"), id="W2A-RESP-02-nul"),
        pytest.param(("X A", "v"), id="W2A-RESP-02-name-not-token"),
        pytest.param(("X-A\r\nSet-Cookie", "p=1"), id="W2A-RESP-02-name-crlf"),
        pytest.param(("X-A", "☃"), id="W2A-RESP-02-not-latin1"),
        pytest.param((b"X-A", b"v"), id="W2A-RESP-02-bytes"),
        pytest.param(("X-A",), id="W2A-RESP-02-not-a-pair"),
    ],
)
async def test_resp_02_bad_header_never_reaches_wire(
    header: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = Catching("200 OK", [("Content-Type", "text/plain"), header])
    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        outcome = await refused(app)
    peer = outcome.peer
    assert isinstance(app.raised, (TypeError, ValueError))
    assert_generic_500(peer)
    for name, value in peer.headers:
        assert b"\r" not in value
        assert b"\n" not in value
        assert name != b"set-cookie"
    errors = [r for r in caplog.records if r.name == "bridgeway" and r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None  # the quiet run logs; the default one raises
    assert repr(errors[0].exc_info[1]) == repr(app.raised)
    assert outcome.raised is app.raised


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-A": "v"}, id="W2A-RESP-02-dict"),
        pytest.param("X-A: v", id="W2A-RESP-02-str"),
        pytest.param(None, id="W2A-RESP-02-None"),
    ],
)
async def test_resp_02_headers_must_be_a_sequence_of_pairs(headers: Any) -> None:
    app = Catching("200 OK", headers)
    outcome = await refused(app)
    assert isinstance(app.raised, TypeError)
    assert outcome.raised is app.raised
    assert_generic_500(outcome.peer)


async def test_resp_03_latin1_header_values() -> None:
    headers = [("Content-Disposition", 'attachment; filename="café.txt"')]
    peer = await call(WSGIToASGI(simple(headers=headers)))
    assert peer.header(b"content-disposition") == b'attachment; filename="caf\xe9.txt"'


async def test_resp_04_lowercase_order_and_duplicates_kept() -> None:
    headers = [
        ("X-Mixed-Case", "1"),
        ("Set-Cookie", "a=1"),
        ("Content-Type", "text/plain"),
        ("Set-Cookie", "b=2"),
    ]
    peer = await call(WSGIToASGI(simple(headers=headers, body=[b"x", b"y"])))
    assert peer.headers == [
        (b"x-mixed-case", b"1"),
        (b"set-cookie", b"a=1"),
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"b=2"),
    ]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Connection", id="W2A-RESP-05-connection"),
        pytest.param("Transfer-Encoding", id="W2A-RESP-05-transfer-encoding"),
        pytest.param("Keep-Alive", id="W2A-RESP-05-keep-alive"),
        pytest.param("Proxy-Foo", id="W2A-RESP-05-proxy"),
        pytest.param("Upgrade", id="W2A-RESP-05-upgrade"),
    ],
)
async def test_resp_05_hop_by_hop(name: str, caplog: pytest.LogCaptureFixture) -> None:
    headers = [(name, "chunked" if name == "Transfer-Encoding" else "x"), ("X-Kept", "1")]
    with caplog.at_level(logging.WARNING, logger="bridgeway"):
        peer = await call(WSGIToASGI(simple(headers=headers)))
    assert peer.status == 200
    assert peer.headers == [(b"x-kept", b"1"), (b"content-length", b"5")]
    assert any(name in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)

    app = Catching("200 OK", headers)
    outcome = await refused(app, strict_headers=True)
    assert isinstance(app.raised, ValueError)
    assert_generic_500(outcome.peer)


async def test_resp_06_exc_info_replaces_unsent_headers(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise KeyError("boom")
        except KeyError:
            start_response("500 Oops", [("X-Error", "1")], sys.exc_info())
        return [b"error page"]

    peer = await call(WSGIToASGI(app))
    assert peer.status == 500
    assert peer.headers == [(b"x-error", b"1"), (b"content-length", b"10")]
    assert peer.body == b"error page"
    assert peer.complete


async def test_resp_06_exc_info_after_headers_reraises() -> None:
    seen: list[tuple[BaseException, BaseException]] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"first"
        try:
            raise KeyError("late")
        except KeyError as original:
            try:
                start_response("500 Oops", [], sys.exc_info())
            except KeyError as exc:
                seen.append((exc, original))
                raise

    with pytest.raises(KeyError):
        await call(WSGIToASGI(app))
    assert len(seen) == 1
    assert seen[0][0] is seen[0][1]


async def test_resp_06_no_reference_to_exc_info_kept() -> None:
    class Marker:
        pass

    refs: list[weakref.ref[Marker]] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])

        def fail() -> None:
            marker = Marker()  # held by the failing frame, reachable from the traceback
            refs.append(weakref.ref(marker))
            raise ValueError("x")

        try:
            fail()
        except ValueError:
            start_response("500 Oops", [], sys.exc_info())
        return [b""]

    peer = await call(WSGIToASGI(app))
    assert peer.status == 500
    assert refs[0]() is None


async def test_resp_07_headers_wait_for_first_nonempty_chunk() -> None:
    parked = threading.Event()
    release = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        for _ in range(5):
            yield b""
        parked.set()
        release.wait(10)
        yield b"x"

    peer = Peer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, WSGIToASGI(app), make_scope(), peer)
        await wait_thread_event(parked)
        # the loop has had its chance to send anything already posted
        await anyio.sleep(0.05)
        assert peer.messages == []
        release.set()
    assert peer.status == 200
    assert peer.body == b"x"
    assert peer.complete


async def test_resp_07_error_after_empty_chunks_is_500() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("X-Promised", "1")])
        yield b""
        raise RuntimeError("failed before any byte")

    outcome = await refused(app)
    assert isinstance(outcome.raised, RuntimeError)
    assert_generic_500(outcome.peer)
    assert outcome.peer.header(b"x-promised") is None


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param("200 OK", [], id="W2A-RESP-08-empty-list"),
        pytest.param("200 OK", [b""], id="W2A-RESP-08-empty-chunk"),
        pytest.param("204 No Content", [], id="W2A-RESP-08-204"),
        pytest.param("302 Found", [], id="W2A-RESP-08-302"),
        pytest.param("304 Not Modified", [], id="W2A-RESP-08-304"),
    ],
)
async def test_resp_08_empty_iterable(status: str, body: list[bytes]) -> None:
    peer = await call(WSGIToASGI(simple(status, body=body)))
    assert [m["type"] for m in peer.messages] == ["http.response.start", "http.response.body"]
    assert peer.status == int(status[:3])
    assert peer.body == b""
    assert peer.complete


async def test_resp_09_write_blocks_until_sent_and_comes_first() -> None:
    peer = Peer(send_delay=0.01)
    sent_after_write: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [])
        write(b"a")
        sent_after_write.append(len(peer.body_parts))
        write(b"b")
        sent_after_write.append(len(peer.body_parts))
        write(b"")
        return [b"c"]

    await call(WSGIToASGI(app), make_scope(), peer)
    assert sent_after_write == [1, 2]
    assert peer.body_parts == [b"a", b"b", b"c"]
    assert peer.complete


async def test_resp_09_write_misuse() -> None:
    errors: list[BaseException] = []
    writes: list[Callable[[bytes], object]] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [])
        writes.append(write)
        try:
            write("text")  # type: ignore[arg-type]
        except TypeError as exc:
            errors.append(exc)
        return [b"ok"]

    peer = await call(WSGIToASGI(app))
    assert peer.body == b"ok"
    assert len(errors) == 1
    with pytest.raises(RuntimeError, match="after the response was complete"):
        writes[0](b"late")


async def test_resp_10_backpressure_at_most_two_chunks_ahead() -> None:
    peer = Peer(send_delay=0.002)
    ahead: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        for i in range(60):
            ahead.append(i - peer.body_messages)
            yield b"%d," % i

    await call(WSGIToASGI(app), make_scope(), peer)
    assert peer.body_messages == 60
    assert max(ahead) <= 2, ahead
    assert peer.complete


async def test_resp_10_chunks_are_not_held_back() -> None:
    """A yielded chunk reaches send() while the generator is still blocked."""
    release = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"event 1"
        release.wait(10)
        yield b"event 2"

    peer = Peer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, WSGIToASGI(app), make_scope(), peer)
        assert peer.first_body is not None
        with anyio.fail_after(5):
            await peer.first_body.wait()
        assert peer.body_parts == [b"event 1"]
        release.set()
    assert peer.body == b"event 1event 2"


@pytest.mark.parametrize(
    "item",
    [
        pytest.param("text", id="W2A-RESP-11-str"),
        pytest.param(None, id="W2A-RESP-11-None"),
        pytest.param(123, id="W2A-RESP-11-int"),
    ],
)
async def test_resp_11_non_bytes_item(item: Any) -> None:
    def first(environ: Environ, start_response: StartResponse) -> Iterable[Any]:
        start_response("200 OK", [])
        return [item]

    outcome = await refused(first)
    assert isinstance(outcome.raised, TypeError)
    assert_generic_500(outcome.peer)

    def later(environ: Environ, start_response: StartResponse) -> Iterable[Any]:
        start_response("200 OK", [])
        return [b"good", item]

    peer = Peer()
    with pytest.raises(TypeError, match="must be bytes"):
        await call(WSGIToASGI(later), make_scope(), peer)
    assert peer.body == b"good"
    assert peer.final_messages == 0


async def test_resp_15_content_length_excess_is_cut(caplog: pytest.LogCaptureFixture) -> None:
    closed: list[int] = []
    pulled: list[int] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            for i in range(4):
                pulled.append(i)
                yield b"0123456789"

        def close(self) -> None:
            closed.append(1)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", "15")])
        return Body()

    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        peer = await call(WSGIToASGI(app))
    assert peer.body == b"012345678901234"
    assert peer.header(b"content-length") == b"15"
    assert peer.complete
    assert pulled == [0, 1]  # iteration stopped at the cut-off
    assert closed == [1]
    assert any("Content-Length" in r.getMessage() for r in caplog.records)


async def test_resp_15_content_length_short_aborts(caplog: pytest.LogCaptureFixture) -> None:
    short = simple(headers=[("Content-Length", "10")], body=[b"12", b"345"])
    peer = Peer()
    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        with pytest.raises(RuntimeError, match="fewer bytes"):
            await call(WSGIToASGI(short), make_scope(), peer)
        assert caplog.records == []  # the server logs what propagates
        quiet = await call(WSGIToASGI(short, propagate_exceptions=False))
    for aborted in (peer, quiet):
        assert aborted.body == b"12345"
        assert aborted.final_messages == 0
    assert any(r.exc_info and "fewer bytes" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.parametrize(
    ("body", "length"),
    [
        pytest.param([b"hello"], b"5", id="W2A-RESP-16-list"),
        pytest.param((b"hello",), b"5", id="W2A-RESP-16-tuple"),
        pytest.param([b"he", b"llo"], None, id="W2A-RESP-16-two-items"),
        pytest.param(None, None, id="W2A-RESP-16-iterator"),
    ],
)
async def test_resp_16_single_chunk_gets_length(
    body: Iterable[bytes] | None, length: bytes | None
) -> None:
    peer = await call(WSGIToASGI(simple(body=iter([b"hello"]) if body is None else body)))
    assert peer.header(b"content-length") == length
    assert peer.body == b"hello"


async def test_resp_16_no_length_after_write() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])(b"written ")
        return [b"body"]

    peer = await call(WSGIToASGI(app))
    assert peer.header(b"content-length") is None
    assert peer.body == b"written body"


@pytest.mark.parametrize(
    "status",
    [pytest.param("204 No Content", id="204"), pytest.param("304 Not Modified", id="304")],
)
async def test_resp_17_no_body_statuses(status: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bridgeway"):
        peer = await call(WSGIToASGI(simple(status, body=[b"oops", b"more"])))
    assert peer.status == int(status[:3])
    assert peer.body == b""
    assert peer.complete
    assert peer.final_messages == 1
    assert peer.header(b"content-length") is None
    assert any("dropped body" in r.getMessage() for r in caplog.records)


async def test_resp_17_no_server_managed_headers_added() -> None:
    peer = await call(WSGIToASGI(simple(body=[b"a", b"b"])))
    names = {name for name, _ in peer.headers}
    assert names.isdisjoint({b"date", b"server", b"transfer-encoding", b"content-length"})


async def test_http_03_head() -> None:
    closed: list[int] = []
    pulled: list[int] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            for i in range(3):
                pulled.append(i)
                yield b"x" * 1024

        def close(self) -> None:
            closed.append(1)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        assert environ["REQUEST_METHOD"] == "HEAD"
        start_response("200 OK", [("Content-Length", "3072"), ("Content-Type", "x/y")])
        return Body()

    peer = await call(WSGIToASGI(app), make_scope("HEAD"))
    assert peer.status == 200
    assert peer.header(b"content-length") == b"3072"
    assert peer.body == b""
    assert peer.complete
    assert closed == [1]
    assert pulled == [0]


async def test_http_10_duplicate_content_length() -> None:
    same = [("Content-Length", "5"), ("Content-Length", "5")]
    peer = await call(WSGIToASGI(simple(headers=same)))
    assert [n for n, _ in peer.headers].count(b"content-length") == 1
    assert peer.body == b"hello"

    app = Catching("200 OK", [("Content-Length", "5"), ("Content-Length", "6")])
    assert_generic_500((await refused(app)).peer)
    assert isinstance(app.raised, ValueError)


async def test_ext_01_file_wrapper_reads_from_position_and_closes() -> None:
    data = bytes(range(256)) * 10
    files: list[io.BytesIO] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        f = io.BytesIO(data)
        f.seek(100)
        files.append(f)
        start_response("200 OK", [])
        result: Iterable[bytes] = environ["wsgi.file_wrapper"](f, 64)
        return result

    peer = await call(WSGIToASGI(app))
    assert peer.body == data[100:]
    assert peer.body_messages == -(-(len(data) - 100) // 64)
    assert files[0].closed
