"""Double bridges are transparent (hypothesis, in-process).

``ASGIToWSGI(WSGIToASGI(app))`` is a WSGI app: the inner WSGI app must see the environ
the outer WSGI server built, and the server must get back what the inner app returned.
``WSGIToASGI(ASGIToWSGI(app))`` is an ASGI app: the same, with scopes and messages.

Documented normalisations (``NORMALISATIONS``, also listed in docs/reliability.md) are
applied to the expected side before comparing; anything else is a difference.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import anyio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bridgeway import WSGIToASGI
from bridgeway._types import Receive, Scope, Send
from tests.reliability.results import record
from tests.support import w2a_driver
from tests.support.a2w_driver import StartResponseRecorder, make_environ, serving

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

NORMALISATIONS = [
    "none for the response of ASGIToWSGI(WSGIToASGI(app)) in one process: the outer WSGI"
    " server gets the inner app's own status line (its reason phrase) and header list"
    " (names' case, values as written, no Content-Length added), carried around ASGI by"
    " the live round trip (bridgeway._round_trip)",
    "through ASGI (WSGIToASGI(ASGIToWSGI(app))), a response without Content-Length may"
    " gain one when the whole body is one message",
    "request header names are lower-cased; repeated request headers reach the inner WSGI"
    " app as one header, values joined with ',' (Cookie with '; '), in first-seen order"
    " (the inner ASGI app of WSGIToASGI(ASGIToWSGI(app)) in one process gets the outer"
    " scope's headers as they were: a live round trip, docs/asgi-to-wsgi.md)",
    "request headers whose names contain '_' are dropped on the way into WSGI",
    "leading and trailing spaces and tabs of request header values are stripped (on the"
    " way into WSGI)",
    "the request body reaches the inner app intact, but not in the same message"
    " boundaries (re-chunked by wsgi.input reads), except for the inner ASGI app of a"
    " live round trip, which gets the outer messages as they came",
    "none for the path: raw_path (with '%2F' and any other escape) survives byte for byte,"
    " carried through WSGI as RAW_URI/REQUEST_URI; a literal '%2F' in PATH_INFO too",
    "a Content-Length request header is only passed when the outer request had one"
    " (chunked requests arrive without it, as wsgi.input_terminated bodies)",
]

PROFILE = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    # No 'explain' phase: its tracing makes a failing example take minutes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"])
TOKEN = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,15}\Z")
FIELD_VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=30,
)
PATH_TEXT = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs", "Cc"], exclude_characters="?#", max_codepoint=0x2FFF
    ),
    max_size=20,
)
BODY = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    st.binary(min_size=70000, max_size=70000).map(lambda b: b or b"x" * 70000),
)
RESERVED = {"content-length", "content-type", "transfer-encoding", "host", "connection"}
STATUSES = st.sampled_from([200, 201, 202, 203, 206, 299, 301, 400, 404, 418, 500, 503])
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
RESPONSE_HEADERS = st.lists(
    st.tuples(TOKEN, FIELD_VALUE).filter(
        lambda h: h[0].lower() not in HOP_BY_HOP | {"content-length", "proxy-authenticate"}
    ),
    max_size=6,
)
CHUNKS = st.lists(st.binary(max_size=300), max_size=5)
TIMINGS: dict[str, float] = {}


def _header_key(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


# --- ASGIToWSGI(WSGIToASGI(app)): WSGI outside, WSGI inside --------------------------


class InnerWSGI:
    """Records the environ and body it got; answers with the response it is given."""

    def __init__(self) -> None:
        self.environ: dict[str, Any] = {}
        self.body = b""
        self.response: tuple[str, list[tuple[str, str]], list[bytes]] = ("200 OK", [], [])

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.environ = dict(environ)
        parts = []
        stream = environ["wsgi.input"]
        if environ.get("CONTENT_LENGTH"):
            remaining = int(environ["CONTENT_LENGTH"])
            while remaining > 0 and (data := stream.read(min(remaining, 8192))):
                parts.append(data)
                remaining -= len(data)
        self.body = b"".join(parts)
        status, headers, chunks = self.response
        start_response(status, headers)
        return iter(chunks)


@st.composite
def wsgi_requests(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    method = draw(METHODS)
    segments = draw(st.lists(PATH_TEXT, min_size=1, max_size=4))
    path = "/" + "/".join(segments)
    # PATH_INFO as a WSGI server gives it: the decoded bytes, as latin-1 code points;
    # sometimes holding a literal "%2F" (the client sent %252F).
    if draw(st.booleans()):
        path += "/a%2Fb"
    path_info = path.encode("utf-8").decode("latin-1")
    query = draw(st.binary(max_size=40)).decode("latin-1")
    query = query.replace("#", "")  # never part of a request target
    names = draw(
        st.lists(TOKEN.filter(lambda n: n.lower() not in RESERVED), max_size=8, unique_by=str.lower)
    )
    headers = [(name, draw(FIELD_VALUE)) for name in names]
    body = draw(BODY)
    environ = make_environ(method, path_info, query_string=query, headers=headers, body=body)
    if body:
        environ["CONTENT_TYPE"] = draw(st.sampled_from(["application/octet-stream", "text/x"]))
    return environ, body


@given(request=wsgi_requests(), status=STATUSES, headers=RESPONSE_HEADERS, chunks=CHUNKS)
@PROFILE
def test_wsgi_through_asgi_and_back(
    request: tuple[dict[str, Any], bytes],
    status: int,
    headers: list[tuple[str, str]],
    chunks: list[bytes],
) -> None:
    environ, body = request
    inner = InnerWSGI()
    inner.response = (f"{status} Made Up Reason", headers, chunks)
    started = time.perf_counter()
    with serving(WSGIToASGI(inner, max_threads=2), lifespan="off") as outer:
        result = _call_wsgi(outer, environ)
    TIMINGS["wsgi"] = TIMINGS.get("wsgi", 0.0) + time.perf_counter() - started

    # What the inner app saw.
    seen = inner.environ
    for key in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE"):
        assert seen.get(key, "") == environ.get(key, ""), key
    sent_headers = {k: v.strip(" \t") for k, v in environ.items() if k.startswith("HTTP_")}
    got_headers = {k: v for k, v in seen.items() if k.startswith("HTTP_")}
    assert got_headers == sent_headers
    assert seen.get("CONTENT_LENGTH", "") in (environ.get("CONTENT_LENGTH", ""), "")
    assert inner.body == body

    # What the outer server got back: the inner app's own status line and headers (the
    # live round trip carries what ASGI cannot: the reason phrase, the names' case).
    assert (result[0], result[1]) == (inner.response[0], headers)
    assert result[2] == b"".join(chunks)


def _call_wsgi(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    recorder = StartResponseRecorder()
    iterable = app(environ, recorder)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    status, headers, _ = recorder.calls[-1]
    return status, headers, body


# --- WSGIToASGI(ASGIToWSGI(app)): ASGI outside, ASGI inside --------------------------


class InnerASGI:
    def __init__(self) -> None:
        self.scope: Scope = {}
        self.body = b""
        self.response: tuple[int, list[tuple[bytes, bytes]], list[bytes]] = (200, [], [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.scope = scope
        parts = []
        while True:
            message = await receive()
            assert message["type"] == "http.request", message
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        self.body = b"".join(parts)
        status, headers, chunks = self.response
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    return [body[a:b] for a, b in itertools.pairwise(points)] or [b""]


@st.composite
def asgi_requests(draw: st.DrawFn) -> tuple[Scope, list[bytes]]:
    method = draw(METHODS)
    segments = draw(st.lists(PATH_TEXT, min_size=1, max_size=4))
    path = "/" + "/".join(segments)
    from urllib.parse import quote

    raw_path = quote(path, safe="/:@!$&'()*+,;=-._~").encode("ascii")
    if draw(st.booleans()):
        path += "/a/b"
        raw_path += b"/a%2Fb"  # an encoded slash: path has "/", raw_path keeps "%2F"
    query = draw(st.binary(max_size=40)).replace(b"#", b"")
    names = draw(st.lists(TOKEN.filter(lambda n: n.lower() not in RESERVED), max_size=6))
    # Duplicates (names drawn twice, in any case) and an underscore header.
    headers = [(n.lower().encode(), draw(FIELD_VALUE).encode("latin-1")) for n in names]
    repeat = draw(st.booleans())
    if names and repeat:
        headers.append((names[0].lower().encode(), b"again"))
    if draw(st.booleans()):
        headers.append((b"x_forwarded_for", b"evil"))
    body = draw(BODY)
    cuts = draw(st.lists(st.integers(min_value=0, max_value=80000), max_size=4))
    chunked = draw(st.booleans())
    if chunked:
        headers.append((b"transfer-encoding", b"chunked"))
    else:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = w2a_driver.make_scope(
        method, path, raw_path=raw_path, query_string=query, headers=headers
    )
    return scope, _split(body, cuts)


@given(request=asgi_requests(), status=STATUSES, headers=RESPONSE_HEADERS, chunks=CHUNKS)
@PROFILE
def test_asgi_through_wsgi_and_back(
    request: tuple[Scope, list[bytes]],
    status: int,
    headers: list[tuple[str, str]],
    chunks: list[bytes],
) -> None:
    scope, parts = request
    inner = InnerASGI()
    raw_headers = [(n.lower().encode(), v.encode("latin-1")) for n, v in headers]
    inner.response = (status, raw_headers, chunks)
    started = time.perf_counter()
    with serving(inner, lifespan="off") as middle:
        outer = WSGIToASGI(middle, max_threads=2)
        peer = w2a_driver.Peer(parts)

        async def main() -> None:
            await w2a_driver.call(outer, scope, peer)

        try:
            anyio.run(main)
        finally:
            outer.pool().shutdown(5.0)
    TIMINGS["asgi"] = TIMINGS.get("asgi", 0.0) + time.perf_counter() - started

    seen = inner.scope
    assert seen["method"] == scope["method"]
    assert seen["path"] == scope["path"]
    assert seen["query_string"] == scope["query_string"]
    assert seen.get("root_path", "") == ""
    # The raw target travels as REQUEST_URI/RAW_URI, so even %2F survives.
    assert seen["raw_path"] == scope["raw_path"]
    # A live round trip (the ASGIToWSGI is called in WSGIToASGI's worker thread, no WSGI
    # middleware in between): the inner app gets the server's own header list, repeats,
    # names with "_" and order kept, as natively (bridgeway._carry); the WSGI environ in
    # between still joins repeats and drops "_" names (W2A-ENV-11/12, checked by
    # tests/w2a/test_w2a_environ.py).
    assert [tuple(h) for h in seen["headers"]] == [tuple(h) for h in scope["headers"]]
    lengths = [v for n, v in seen["headers"] if n == b"content-length"]
    sent_lengths = [v for n, v in scope["headers"] if n == b"content-length"]
    assert lengths == sent_lengths
    assert inner.body == b"".join(parts)

    assert peer.status == status
    got_response = [(n, v) for n, v in peer.headers if n != b"content-length"]
    assert got_response == raw_headers
    assert peer.body == b"".join(chunks)
    assert peer.complete


def test_zz_record_normalisations() -> None:
    """Runs after the properties (alphabetical within the module): records the list."""
    record(
        "property",
        "double-bridges",
        {
            "properties": [
                "ASGIToWSGI(WSGIToASGI(app)): environ in, response out",
                "WSGIToASGI(ASGIToWSGI(app)): scope and body in, messages out",
            ],
            "max_examples": PROFILE.max_examples,
            "normalisations": NORMALISATIONS,
            "seconds": {k: round(v, 2) for k, v in TIMINGS.items()},
        },
    )
