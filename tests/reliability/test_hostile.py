"""Hostile input, through real servers and in-process: header injection produced by the
app, underscore headers, header floods, bad Content-Length, a short body from a client
that stalls and leaves, tracebacks in bodies, and request smuggling by pipelining."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from bridgeway import WSGIToASGI
from bridgeway._types import Receive, Scope, Send
from tests.live.rawclient import RawConnection, request_bytes
from tests.live.servers import ServerProcess, running_server
from tests.reliability.probe_apps import BAD_HEADERS, SECRET
from tests.reliability.results import Outcomes
from tests.reliability.storm import debug
from tests.support import w2a_driver
from tests.support.a2w_driver import StrictInput, make_environ, serving
from tests.support.a2w_driver import call as a2w_call

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SERVERS = [
    pytest.param(("uvicorn-h11", "tests.reliability.probe_apps:w2a"), id="w2a-uvicorn"),
    pytest.param(("gunicorn-gthread", "tests.reliability.probe_apps:a2w"), id="a2w-gunicorn"),
    pytest.param(("waitress", "tests.reliability.probe_apps:a2w"), id="a2w-waitress"),
]


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    name, app = request.param
    with running_server(name, app, ready_path="/debug") as srv:
        yield srv


def _label(srv: ServerProcess) -> str:
    kind = "WSGIToASGI" if srv.app.endswith(":w2a") else "ASGIToWSGI"
    return f"{kind} under {srv.spec.name}"


def _raw(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` and read until the server closes (every request says close)."""
    with RawConnection(port, timeout=timeout) as conn:
        conn.send(data)
        return conn.read_until_close(deadline=timeout)


def _status(raw: bytes) -> int:
    line = raw.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _head(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def _body(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[-1]


CLOSE = [("Connection", "close")]


# --- real servers ---------------------------------------------------------------------


@pytest.mark.servers
@pytest.mark.timeout(60)
def test_injected_response_headers_never_reach_the_wire(server: ServerProcess) -> None:
    outcomes = Outcomes("hostile", f"bad-response-headers {_label(server)}")
    for kind in BAD_HEADERS:
        raw = _raw(server.port, request_bytes("GET", f"/bad-header?kind={kind}", CLOSE))
        head = _head(raw)
        injected = b"\nInjected" in head or b"\rInjected" in head or b"\0" in head
        outcomes.add(
            _label(server),
            f"app response header {kind} ({BAD_HEADERS[kind]!r})",
            f"{_status(raw)}{', INJECTED' if injected else ''}",
        )
        assert not injected, (kind, raw)
        assert _status(raw) == 500, (kind, raw)
    outcomes.save()


@pytest.mark.servers
@pytest.mark.timeout(60)
def test_request_header_abuse(server: ServerProcess) -> None:
    outcomes = Outcomes("hostile", f"request-headers {_label(server)}")
    label = _label(server)

    # X_Forwarded_For must not spoof (or merge into) X-Forwarded-For.
    raw = _raw(
        server.port,
        request_bytes(
            "GET", "/echo", [*CLOSE, ("X_Forwarded_For", "evil"), ("X-Forwarded-For", "good")]
        ),
    )
    seen = json.loads(_body(raw)) if _status(raw) == 200 else {}
    text = json.dumps(seen)
    outcomes.add(label, "X_Forwarded_For: evil next to X-Forwarded-For: good", _spoof(raw, text))
    assert "evil" not in text

    # Flood: many distinct headers, and one header repeated past the cap.
    for count in (500, 5000):
        headers = [*CLOSE, *((f"X-Flood-{i}", "v") for i in range(count))]
        raw = _raw(server.port, request_bytes("GET", "/echo", headers))
        outcomes.add(label, f"{count} distinct headers", str(_status(raw)))
        assert _status(raw) in (200, 400, 431), raw[:200]
    headers = [*CLOSE, *(("X-Rep", str(i)) for i in range(1000))]
    raw = _raw(server.port, request_bytes("GET", "/echo", headers))
    outcomes.add(label, "one header repeated 1000 times", str(_status(raw)))
    assert _status(raw) in (200, 400, 431), raw[:200]

    # Bad Content-Length: refused (by the server or the bridge), never a 500 or a hang.
    cases: list[tuple[str, list[tuple[str, str]]]] = [
        ("Content-Length: -1", [("Content-Length", "-1")]),
        ("Content-Length: abc", [("Content-Length", "abc")]),
        ("Content-Length: +5", [("Content-Length", "+5")]),
        ("Content-Length: 5 and 6", [("Content-Length", "5"), ("Content-Length", "6")]),
        ("Content-Length: 5, 6", [("Content-Length", "5, 6")]),
        (
            "Content-Length and Transfer-Encoding: chunked",
            [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
        ),
    ]
    for name, extra in cases:
        chunked = any(v == "chunked" for _, v in extra)
        payload = b"5\r\nhello\r\n0\r\n\r\n" if chunked else b"hello"
        data = request_bytes("POST", "/upload", [*CLOSE, *extra], b"") + payload
        started = time.monotonic()
        raw = _raw(server.port, data, timeout=8.0)
        took = time.monotonic() - started
        status = _status(raw)
        outcomes.add(label, name, f"{status or 'closed'} in {took:.2f} s")
        assert status != 500, (name, raw[:300])
        assert took < 7.0, name
        if status == 200:  # a server that accepted it must have framed it consistently
            assert json.loads(_body(raw))["length"] in (0, 5), (name, raw)
    outcomes.save()


def _spoof(raw: bytes, text: str) -> str:
    if _status(raw) != 200:
        return str(_status(raw))
    return "200, spoofed" if "evil" in text else "200, underscore header dropped"


@pytest.mark.servers
@pytest.mark.timeout(60)
def test_traceback_never_in_the_body(server: ServerProcess) -> None:
    outcomes = Outcomes("hostile", f"traceback {_label(server)}")
    raw = _raw(server.port, request_bytes("GET", "/error", CLOSE))
    leaked = b"Traceback" in raw or SECRET.encode() in raw
    outcomes.add(_label(server), "app raises (message holds a secret)", f"{_status(raw)}")
    assert _status(raw) == 500, raw
    assert not leaked, raw
    assert SECRET in server.log()  # but it is logged, with its traceback
    outcomes.save()


@pytest.mark.servers
@pytest.mark.timeout(60)
def test_pipelined_smuggling(server: ServerProcess) -> None:
    outcomes = Outcomes("hostile", f"smuggling {_label(server)}")
    label = _label(server)
    smuggled = request_bytes("GET", "/debug", host="x")
    # 1. A body that looks like a request, inside Content-Length, then a real request:
    #    exactly two responses, the second for /second.
    first = request_bytes("POST", "/upload", [], smuggled)
    second = request_bytes("GET", "/second", CLOSE)
    with RawConnection(server.port) as conn:
        conn.send(first + second)
        one = conn.read_response()
        two = conn.read_response()
        rest = conn.read_until_close(deadline=3.0)
    ok = (
        one.status == 200
        and json.loads(one.body) == {"length": len(smuggled)}
        and two.status == 200
        and json.loads(two.body) == {"path": "/second"}
        and not rest
    )
    outcomes.add(label, "request hidden in a Content-Length body, then a request", _ok(ok))
    assert ok, (one, two, rest)
    # 2. The app does not read the body at all: the server must skip it, not parse it.
    first = request_bytes("POST", "/first", [], smuggled)
    with RawConnection(server.port) as conn:
        conn.send(first + second)
        one = conn.read_response()
        two = conn.read_response()
        rest = conn.read_until_close(deadline=3.0)
    ok = json.loads(one.body) == {"path": "/first"} and json.loads(two.body) == {"path": "/second"}
    outcomes.add(label, "same, the app never reads the body", _ok(ok and not rest))
    assert ok, (one, two)
    assert not rest, rest
    outcomes.save()


def _ok(ok: bool) -> str:
    return "two correct responses" if ok else "SMUGGLED"


@pytest.mark.servers
@pytest.mark.timeout(60)
def test_short_body_stall_then_leave(server: ServerProcess) -> None:
    """Content-Length 100000, 1000 bytes, a 2 s stall, then the client goes away: a
    disconnect, not a hang or a busy loop."""
    outcomes = Outcomes("hostile", f"short-body {_label(server)}")
    before = debug(server.port)
    pid = int(before["pid"])
    proc = psutil.Process(pid)
    cpu_before = sum(proc.cpu_times()[:2])
    conn = RawConnection(server.port)
    conn.send(request_bytes("POST", "/upload", [("Content-Length", "100000")], b"") + b"x" * 1000)
    time.sleep(2.0)
    cpu_stall = sum(proc.cpu_times()[:2]) - cpu_before
    conn.close()
    deadline = time.monotonic() + 15.0
    while True:
        after = debug(server.port)
        c, b = after["counters"], before["counters"]
        finished = c["calls_finished"] - b["calls_finished"]
        started = c["calls_started"] - b["calls_started"]
        if (started == finished and started >= 1) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    took = time.monotonic() - (deadline - 15.0)
    aborted = c["upload_aborted"] - b["upload_aborted"]
    outcomes.add(
        _label(server),
        "Content-Length 100000, 1000 bytes sent, 2 s stall, client leaves",
        f"CPU {cpu_stall:.3f} s during the stall; app call finished {took:.2f} s after the"
        f" close; disconnect seen by the app: {bool(aborted)}",
    )
    outcomes.save()
    assert cpu_stall < 0.5, cpu_stall
    assert started == finished, after
    if server.spec.name != "waitress":  # waitress buffers the body: the app never ran
        assert started >= 1, after
        assert aborted == 1, after


# --- in-process -------------------------------------------------------------------------


def _wsgi_bad_header(name: str, value: str) -> Any:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", "2"), (name, value)])
        return [b"ok"]

    return app


def _asgi_bad_header(name: bytes, value: bytes) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"2"), (name, value)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_in_process_injected_headers_are_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    import anyio

    outcomes = Outcomes("hostile", "bad-response-headers in-process")
    for kind, (name, value) in BAD_HEADERS.items():
        caplog.clear()
        # Answered and logged by bridgeway itself (propagate_exceptions=False); by
        # default the ValueError from start_response reaches the server instead.
        adapter = WSGIToASGI(
            _wsgi_bad_header(name, value), max_threads=1, propagate_exceptions=False
        )
        peer = w2a_driver.Peer()

        async def main(adapter: WSGIToASGI = adapter, peer: w2a_driver.Peer = peer) -> None:
            await w2a_driver.call(adapter, w2a_driver.make_scope(), peer)

        with caplog.at_level(logging.ERROR, logger="bridgeway"):
            anyio.run(main)
        adapter.pool().shutdown(5.0)
        wire = repr(peer.messages)
        logged = any(r.levelno >= logging.ERROR for r in caplog.records)
        outcomes.add("WSGIToASGI", f"start_response header {kind}", f"{peer.status}, logged")
        assert peer.status == 500, (kind, peer.messages)
        assert logged, kind
        assert "Injected" not in wire, wire

        caplog.clear()
        with (
            caplog.at_level(logging.ERROR, logger="bridgeway"),
            serving(
                _asgi_bad_header(name.encode("latin-1"), value.encode("latin-1")),
                lifespan="off",
                propagate_exceptions=False,
            ) as a2w,
        ):
            result = a2w_call(a2w, make_environ())
        logged = any(r.levelno >= logging.ERROR for r in caplog.records)
        outcomes.add("ASGIToWSGI", f"http.response.start header {kind}", f"{result.code}, logged")
        assert result.code == 500, (kind, result)
        assert logged, kind
        assert "Injected" not in repr(result.headers)
    outcomes.save()


async def _read_all(scope: Scope, receive: Receive, send: Send) -> None:
    length, more = 0, True
    kinds = []
    while more:
        message = await receive()
        kinds.append(message["type"])
        if message["type"] != "http.request":
            break
        length += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps({"length": length, "last": kinds[-1]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize(
    "value", ["-1", "abc", "+5", "5, 6", "1e3", " 5", "99999999999999999999"], ids=str
)
def test_in_process_bad_content_length_a2w(value: str) -> None:
    """ASGIToWSGI given a hostile CONTENT_LENGTH by a lenient WSGI server: a 400 or a
    body of at most the bytes sent, never a read past the data, never a 500. (The
    stream answers b"" past its data, as a socket whose client left does.)"""
    stream = StrictInput(b"hello", limit=10**21)
    with serving(_read_all, lifespan="off") as a2w:
        result = a2w_call(a2w, make_environ("POST", stream=stream, content_length=value))
    outcomes = Outcomes("hostile", f"content-length a2w {value.encode().hex()}")
    outcomes.add("ASGIToWSGI in-process", f"CONTENT_LENGTH {value!r}", f"{result.code}")
    outcomes.save()
    assert result.code in (200, 400), result
    assert not stream.violations
    if result.code == 200:
        assert json.loads(result.body)["length"] <= 5


def test_in_process_short_body_a2w() -> None:
    """The client promised 100 bytes, sent 10 and left: the app gets http.disconnect."""
    stream = StrictInput(b"x" * 10, limit=100)
    with serving(_read_all, lifespan="off") as a2w:
        started = time.process_time()
        result = a2w_call(a2w, make_environ("POST", stream=stream, content_length="100"))
        cpu = time.process_time() - started
    assert not stream.violations
    data = json.loads(result.body) if result.code == 200 else {}
    outcome = f"{result.code}, app saw {data.get('last')}, CPU {cpu:.3f} s"
    outcomes = Outcomes("hostile", "short-body a2w in-process")
    outcomes.add("ASGIToWSGI in-process", "CONTENT_LENGTH 100, 10 bytes, then EOF", outcome)
    outcomes.save()
    assert data.get("last") == "http.disconnect" or result.code >= 400, result
    assert cpu < 0.5


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"-1")],
        [(b"content-length", b"abc")],
        [(b"content-length", b"5"), (b"content-length", b"6")],
    ],
    ids=["negative", "non-numeric", "duplicate"],
)
def test_in_process_bad_content_length_w2a(headers: list[tuple[bytes, bytes]]) -> None:
    """WSGIToASGI under a lenient ASGI server passing a bad Content-Length: 400 (or the
    app reads nothing past the body), never a 500 or a hang."""
    import anyio

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH", "")
        data = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [json.dumps({"cl": length, "read": len(data)}).encode()]

    adapter = WSGIToASGI(app, max_threads=1)
    peer = w2a_driver.Peer([b"hello"])

    async def main() -> None:
        await w2a_driver.call(adapter, w2a_driver.make_scope("POST", headers=headers), peer)

    anyio.run(main)
    adapter.pool().shutdown(5.0)
    outcomes = Outcomes("hostile", f"content-length w2a {headers!r}")
    outcomes.add("WSGIToASGI in-process", f"headers {headers!r}", f"{peer.status} {peer.body!r}")
    outcomes.save()
    assert peer.status in (200, 400), peer.messages
    if peer.status == 200:
        assert json.loads(peer.body)["read"] <= 5
