"""The protocol rules written once in ``bridgeway._protocol``: the tables of the helpers,
then what each rule means at the adapters' public edges (Content-Length at one
strictness in both directions and in fallback routing, the dispatchers' plain 404)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import h11
import pytest

from bridgeway import ASGIDispatcher, WSGIDispatcher, WSGIToASGI
from bridgeway._protocol import (
    NO_BODY_STATUSES,
    FileWrapper,
    body_read,
    parse_content_length,
    plain_headers,
    plain_response,
    plain_wsgi_response,
    read_size,
    status_has_body,
)
from bridgeway._types import Receive, Scope, Send
from tests.support.a2w_driver import call as a2w_call
from tests.support.a2w_driver import make_environ, respond, serving
from tests.support.w2a_driver import Peer, call, make_scope

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

# ------------------------------------------------------------------ Content-Length

# (field value, the length it declares or None: invalid). RFC 9110 §8.6: 1*DIGIT.
CONTENT_LENGTHS = [
    pytest.param(b"0", 0, id="zero"),
    pytest.param(b"5", 5, id="five"),
    pytest.param(b"007", 7, id="leading-zeros"),
    pytest.param(b"18446744073709551616", 2**64, id="past-64-bits"),
    pytest.param(b" 5\t", 5, id="ows-around"),
    pytest.param(b"", None, id="empty"),
    pytest.param(b" ", None, id="only-ows"),
    pytest.param(b"-1", None, id="negative"),
    pytest.param(b"+5", None, id="plus-sign"),
    pytest.param(b"5_0", None, id="underscore"),
    pytest.param(b"5 0", None, id="inner-space"),
    pytest.param(b"5, 5", None, id="identical-list"),
    pytest.param(b"5,6", None, id="conflicting-list"),
    pytest.param(b"0x10", None, id="hex"),
    pytest.param(b"1e3", None, id="exponent"),
    pytest.param(b"5.0", None, id="decimal-point"),
    pytest.param(b"\x0c5", None, id="form-feed-is-not-ows"),
    pytest.param(b"5\x0b", None, id="vertical-tab-is-not-ows"),
    pytest.param(b"\xb2", None, id="superscript-two"),
    pytest.param(b"9" * 5000, None, id="past-int-digit-limit"),
]


@pytest.mark.parametrize(("value", "length"), CONTENT_LENGTHS)
def test_parse_content_length_bytes_and_str(value: bytes, length: int | None) -> None:
    assert parse_content_length(value) == length
    assert parse_content_length(value.decode("latin-1")) == length  # WSGI's str form


@pytest.mark.parametrize(
    "value",
    ["\u0661\u0662", "\u0663", "\uff15", "5\xa0", "\u20035"],
    ids=["arabic", "arabic-3", "fullwidth", "nbsp", "em-space"],
)
def test_parse_content_length_refuses_unicode_digits_and_spaces(value: str) -> None:
    """``str.isdigit()`` and ``str.strip()`` know Unicode; a Content-Length does not."""
    assert parse_content_length(value) is None


# RFC 9112 §6.3 lets a recipient collapse "5, 5" into 5 (h11 does) or reject it
# (bridgeway does, as its call sites did before this module): the one divergence.
H11_COLLAPSES = {b"5, 5"}
# h11 takes any number of digits (its caller converts them; Python's int() then fails).
H11_CASES = [case for case in CONTENT_LENGTHS if len(case.values[0]) < 100]  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "length"), H11_CASES)
def test_parse_content_length_agrees_with_h11(value: bytes, length: int | None) -> None:
    """Differential: h11 (uvicorn's and hypercorn's HTTP/1.1 parser) reads the same
    request head; it accepts exactly the values bridgeway accepts, with the same length."""
    server = h11.Connection(h11.SERVER)
    server.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + value + b"\r\n\r\n")
    try:
        event = server.next_event()
    except h11.RemoteProtocolError:
        h11_length = None
    else:
        assert isinstance(event, h11.Request)
        h11_length = int(dict(event.headers)[b"content-length"])
    if value in H11_COLLAPSES:
        assert (h11_length, length) == (5, None)
    else:
        assert h11_length == length


INVALID_ON_THE_WIRE = [b"-1", b"5_0", b"+5", b"5, 5", b"\xb2", b"9" * 5000, b"0x10"]
INVALID_IDS = ["negative", "underscore", "plus", "list", "superscript", "5000-digits", "hex"]


@pytest.mark.parametrize("value", INVALID_ON_THE_WIRE, ids=INVALID_IDS)
async def test_w2a_invalid_request_content_length_is_400(value: bytes) -> None:
    """WSGIToASGI under a lenient ASGI server: every invalid value is a 400 before the
    app runs. ``b"\\xb2"`` (``"²"``, a digit to ``str.isdigit()``) and a value past
    Python's int digit limit used to reach the app as its CONTENT_LENGTH."""
    seen: list[str] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ.get("CONTENT_LENGTH", ""))
        start_response("200 OK", [])
        return [b""]

    scope = make_scope("POST", headers=[(b"content-length", value)])
    peer = await call(WSGIToASGI(app), scope, Peer([b"hello"]))
    assert peer.status == 400
    assert seen == []


@pytest.mark.parametrize(
    ("value", "code"),
    [("5", 200), (" 5 ", 200), ("", 200), ("²", 400), ("\x0c5", 400), ("5\n", 400), ("-1", 400)],
    ids=["digits", "ows", "empty-is-absent", "superscript", "form-feed", "newline", "negative"],
)
def test_a2w_request_content_length(value: str, code: int) -> None:
    """ASGIToWSGI reads CONTENT_LENGTH at the same strictness: ``"²"`` used to fail in
    ``int()`` (an internal error), ``"\\x0c5"`` and ``"5\\n"`` used to be read as 5."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"ok")

    environ = make_environ("POST", body=b"hello", content_length=value)
    with serving(app, lifespan="off") as adapter:
        result = a2w_call(adapter, environ)
    assert result.code == code


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ([(b"content-length", b"5")], None),
        ([(b"content-length", b" 5 ")], None),
        ([(b"content-length", b"5"), (b"content-length", b"5")], None),
        ([(b"content-length", b"\x0c5")], "invalid"),
        ([(b"content-length", b"-1")], "invalid"),
        ([(b"content-length", b"5, 5")], "invalid"),
        ([(b"content-length", b"5"), (b"content-length", b"6")], "conflicting"),
    ],
    ids=["digits", "ows", "repeated", "form-feed", "negative", "list", "conflict"],
)
def test_a2w_response_content_length(headers: list[tuple[bytes, bytes]], error: str | None) -> None:
    """The ASGI app's Content-Length (A2W-SEND-03): refused inside its send() when
    invalid; a form feed around the digits used to be stripped as whitespace."""
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
        except ValueError as exc:
            raised.append(exc)
            await respond(send, b"refused", status=500)
            return
        await send({"type": "http.response.body", "body": b"hello"})

    with serving(app, lifespan="off", propagate_exceptions=False) as adapter:
        result = a2w_call(adapter)
    if error is None:
        assert (raised, result.body, result.header("Content-Length")) == ([], b"hello", "5")
    else:
        assert len(raised) == 1
        assert error in str(raised[0])
        assert result.code == 500


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ([("Content-Length", "5")], None),
        ([("Content-Length", " 5\t")], None),
        ([("Content-Length", "5"), ("content-length", "5")], None),
        ([("Content-Length", "5\xa0")], "invalid"),
        ([("Content-Length", "²")], "invalid"),
        ([("Content-Length", "5_0")], "invalid"),
        ([("Content-Length", "05"), ("Content-Length", "5")], "conflicting"),
    ],
    ids=["digits", "ows", "repeated", "nbsp", "superscript", "underscore", "05-then-5"],
)
async def test_w2a_response_content_length(
    headers: list[tuple[str, str]], error: str | None
) -> None:
    """The WSGI app's Content-Length: ``"5\\xa0"`` used to be stripped to 5, ``"²"``
    failed in ``int()`` with Python's message, and ``"05"`` beside ``"5"`` was one
    length; now the same value rule as everywhere, and repeats must be the same value."""
    raised: list[BaseException] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            start_response("200 OK", headers)
        except ValueError as exc:
            raised.append(exc)
            start_response("500 Internal Server Error", [])
            return [b""]
        return [b"hello"]

    peer = await call(WSGIToASGI(app))
    if error is None:
        assert (raised, peer.status, peer.body) == ([], 200, b"hello")
        assert peer.headers.count((b"content-length", b"5")) == 1
    else:
        assert len(raised) == 1
        assert f"{error} Content-Length" in str(raised[0])
        assert peer.status == 500


# ----------------------------------------------------- Content-Length in fallback routing


async def _not_here(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, b"not here", status=404)


async def _echo_body(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await respond(send, b"fallback saw " + body)


async def test_asgi_fallback_reads_a_body_whose_length_is_invalid() -> None:
    """``b"2_000"`` was read by ``int()`` as 2000, over the replay limit, so fallback was
    switched off and the first app's 404 stood; an invalid length is now no length: the
    body is read (bounded) and the fallback app answers, as for a chunked body."""
    dispatcher = ASGIDispatcher(default=_not_here, fallback=_echo_body, replay_limit=1024)
    scope = make_scope("POST", "/x", headers=[(b"content-length", b"2_000")])
    peer = await call(dispatcher, scope, Peer([b"hi"]))
    assert (peer.status, peer.body) == (200, b"fallback saw hi")


def _wsgi_not_here(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("404 Not Found", [])
    return [b""]


def _wsgi_echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    seen = {"CONTENT_LENGTH": environ.get("CONTENT_LENGTH"), "body": environ["wsgi.input"].read()}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen, default=bytes.decode).encode()]


@pytest.mark.parametrize("value", ["5_0", "-1"])
def test_wsgi_fallback_passes_an_invalid_length_through(value: str) -> None:
    """Differential: the fallback app sees the request as it sees it called directly.
    ``"5_0"`` used to be read as 50 (50 bytes read, CONTENT_LENGTH rewritten to "50"),
    ``"-1"`` rewritten to "0": the dispatcher repaired a header the app would refuse."""

    def environ() -> dict[str, Any]:
        return make_environ("POST", stream=io.BytesIO(b"x" * 50), content_length=value)

    dispatcher = WSGIDispatcher(default=_wsgi_not_here, fallback=_wsgi_echo)
    direct = _call_wsgi(_wsgi_echo, environ())
    through = _call_wsgi(dispatcher, environ())
    assert through["CONTENT_LENGTH"] == direct["CONTENT_LENGTH"] == value


def _call_wsgi(app: Any, environ: dict[str, Any]) -> dict[str, Any]:
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(status)

    body = b"".join(app(environ, start_response))
    assert statuses[-1] == "200 OK", statuses
    result: dict[str, Any] = json.loads(body)
    return result


# ------------------------------------------------------------------ no-body statuses


@pytest.mark.parametrize(
    ("status", "has_body"),
    [(200, True), (123, True), (404, True), (204, False), (304, False)],
    ids=["200", "1xx-as-final", "404", "204", "304"],
)
def test_status_has_body(status: int, has_body: bool) -> None:
    """204 and 304 never carry content (RFC 9110 §15.3.5, §15.4.5). A 1xx sent as the
    final status keeps its body, as uvicorn and hypercorn serve it."""
    assert status_has_body(status) is has_body
    assert (status in NO_BODY_STATUSES) is not has_body


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_status_drops_the_body_both_ways(status: int) -> None:
    async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"dropped", status=status)

    with serving(asgi_app, lifespan="off") as adapter:
        result = a2w_call(adapter)
    assert (result.code, result.body) == (status, b"")


# ------------------------------------------------------------------ bounded reads


@pytest.mark.parametrize(
    ("left", "chunk_size", "size"),
    [(None, 64, 64), (100, 64, 64), (10, 64, 10), (0, 64, 0)],
    ids=["no-length", "more-than-a-chunk", "less-than-a-chunk", "nothing-left"],
)
def test_read_size_never_past_the_length(left: int | None, chunk_size: int, size: int) -> None:
    assert read_size(left, chunk_size) == size


@pytest.mark.parametrize(
    ("left", "data", "step"),
    [
        (10, b"abcd", (6, True)),
        (4, b"abcd", (0, False)),
        (10, b"", None),  # EOF before the declared length: the client went away
        (10, None, None),  # the read failed
        (None, b"abcd", (None, True)),
        (None, b"", (None, False)),  # wsgi.input_terminated: b"" is the end
        (None, None, None),
    ],
    ids=[
        "part",
        "all",
        "early-eof",
        "failed",
        "terminated-part",
        "terminated-end",
        "failed-no-length",
    ],
)
def test_body_read(
    left: int | None, data: bytes | None, step: tuple[int | None, bool] | None
) -> None:
    assert body_read(left, data) == step


class _NoReadPastEnd(io.BytesIO):
    """An input that fails a read past its declared end, as wsgiref's would block."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.end = len(data)

    def read(self, size: int | None = -1) -> bytes:
        assert size is not None
        assert 0 < size <= self.end - self.tell(), size
        return super().read(size)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64])
def test_bounded_reads_stop_at_the_length(chunk_size: int) -> None:
    stream = _NoReadPastEnd(b"0123456789")
    left: int | None = 10
    chunks, more = [], True
    while more:
        data = stream.read(read_size(left, chunk_size))
        step = body_read(left, data)
        assert step is not None
        chunks.append(data)
        left, more = step
    assert b"".join(chunks) == b"0123456789"


# ------------------------------------------------------------------ files and plain answers


def test_file_wrapper_from_the_current_position_then_closes() -> None:
    file = io.BytesIO(b"skip:abcdefg")
    file.seek(5)
    wrapper = FileWrapper(file, 3)
    assert list(wrapper) == [b"abc", b"def", b"g"]
    wrapper.close()
    assert file.closed


def test_plain_answers_are_the_same_on_both_sides() -> None:
    recorded: list[tuple[str, list[tuple[str, str]], Any]] = []
    body = plain_wsgi_response(lambda *args: recorded.append(args), "404 Not Found", b"Not Found")  # type: ignore[arg-type]
    assert body == [b"Not Found"]
    assert recorded == [("404 Not Found", plain_headers(b"Not Found"), None)]
    start, end = plain_response(404, b"Not Found")
    assert start["headers"] == [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"9"),
    ]
    assert end == {"type": "http.response.body", "body": b"Not Found", "more_body": False}


async def test_dispatchers_answer_the_same_plain_404() -> None:
    """The ASGI and WSGI dispatchers' own 404 are one answer (it had no charset)."""
    peer = await call(ASGIDispatcher(), make_scope("GET", "/nowhere"))
    recorded: list[Any] = []
    body = WSGIDispatcher()(make_environ("GET", "/nowhere"), lambda *a: recorded.append(a))  # type: ignore[arg-type]
    assert peer.status == 404
    assert recorded[0][0] == "404 Not Found"
    asgi_headers = [(n.decode(), v.decode()) for n, v in peer.headers]
    wsgi_headers = [(n.lower(), v) for n, v in recorded[0][1]]
    assert (
        asgi_headers
        == wsgi_headers
        == [
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", "9"),
        ]
    )
    assert peer.body == b"".join(body) == b"Not Found"
