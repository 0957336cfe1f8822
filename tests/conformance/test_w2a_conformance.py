"""WSGIToASGI conformance through real ASGI servers, differential against native gunicorn.

Theory of operation: one module-scoped fleet starts, in parallel, every ASGI server of
``live.servers.ASGI_SERVERS`` hosting ``WSGIToASGI(probe)``, four of them again with a
root path (hosting the scope shim), and gunicorn gthread serving the same ``probe``
natively (twice: plain, and with ``SCRIPT_NAME=/app``). Requests are raw bytes
(``live.rawclient``), so the tests control percent-encoding, header repeats, chunking,
pacing and disconnects. A differential scenario sends the same bytes to a bridged server
and to native gunicorn and compares status, headers and body (for the echo routes, the
echoed environ with types), minus what differs by nature (``NATURE`` and
``IGNORED_HEADERS``, each with its reason). Other tests assert the CONFORMANCE.md
behaviour directly. The probe records events (``next``, ``close``, read errors, with
thread ids) to ``$BRIDGEWAY_PROBE_DIR/<rid>.jsonl``; tests poll that file with a deadline.

Test ids read ``ITEM[+ITEM...]:scenario:server``; ``coverage_w2a.py`` maps items to tests.
"""

from __future__ import annotations

import json
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from live.rawclient import RawConnection, RawResponse, exchange, request_bytes
from live.servers import ASGI_SERVERS, SERVERS, ServerProcess, ServerSpec

pytestmark = pytest.mark.servers

APP = "tests.conformance.w2a_probe:app"
SHIMMED = "tests.conformance.w2a_probe:shimmed"
NATIVE_APP = "tests.conformance.w2a_probe:probe"
BRIDGED = list(ASGI_SERVERS)
UVICORNS = ("uvicorn-h11", "uvicorn-httptools", "gunicorn-uvicorn")


def _with_args(base: str, name: str, *extra: str) -> ServerSpec:
    spec = SERVERS[base]
    return ServerSpec(name, spec.kind, lambda app, port: [*spec.argv(app, port), *extra])


# The same servers with a root path: uvicorn and hypercorn prefix ``path`` with it,
# daphne and granian leave ``path`` as received (W2A-ENV-03/04).
ROOTED = {
    "uvicorn-h11": _with_args("uvicorn-h11", "uvicorn-h11+root", "--root-path", "/app"),
    "hypercorn-asyncio": _with_args(
        "hypercorn-asyncio", "hypercorn-asyncio+root", "--root-path", "/app"
    ),
    "daphne": _with_args("daphne", "daphne+root", "--root-path", "/app"),
    "granian-asgi": _with_args("granian-asgi", "granian-asgi+root", "--url-path-prefix", "/app"),
}

# Environ keys that differ between a bridged and a native server by nature.
NATURE: dict[str, str] = {
    "SERVER_SOFTWARE": "gunicorn names itself; ASGI servers do not pass their name in the scope",
    "SERVER_PORT": "each server listens on its own free port",
    "REMOTE_PORT": "each connection has its own client port",
    "gunicorn.socket": "gunicorn's own extension, no ASGI equivalent",
    "wsgi.input": "each server has its own stream class (the behaviour is compared by /__read)",
    "wsgi.errors": "each server has its own stream class (checked by /__errors)",
    "wsgi.file_wrapper": "each server has its own wrapper class (compared by /__file bytes)",
    "wsgi.early_hints": "gunicorn 27's own extension; bridgeway offers none (EXT-04)",
    "asgi.state": "ASGI lifespan state, only under an ASGI server (W2A-ENV-19)",
    "REQUEST_URI": "bridgeway also sets uWSGI's name for RAW_URI; gunicorn sets only RAW_URI",
    "HTTP_CONNECTION": "hop-by-hop; some ASGI servers pass it in the scope and some do not",
}
# Response headers that are the server's business, not the app's.
IGNORED_HEADERS: dict[bytes, str] = {
    b"date": "set by each server at its own time (HTTP-10 checks there is one)",
    b"server": "each server names itself",
    b"connection": "keep-alive is the server's decision (HTTP-05)",
    b"keep-alive": "keep-alive is the server's decision (HTTP-05)",
    b"transfer-encoding": "framing is the server's decision (HTTP-07)",
}
# (scenario, environ key): documented bridgeway choices where gunicorn differs.
DOCUMENTED: dict[tuple[str, str], str] = {
    ("dup-cookie", "HTTP_COOKIE"): 'W2A-ENV-11: cookies are joined with "; " (gunicorn: ",")',
    ("empty-query", "RAW_URI"): "ASGI cannot carry an empty '?': raw_path has no query part",
    ("empty-query", "REQUEST_URI"): "ASGI cannot carry an empty '?': raw_path has no query part",
}

PAUSE = 0.02  # client pacing between body pieces (not synchronisation)


@dataclass
class Fleet:
    bridged: dict[str, ServerProcess]
    rooted: dict[str, ServerProcess]
    native: ServerProcess
    native_root: ServerProcess
    probe_dir: Path
    native_cache: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    probe_dir = Path(tempfile.mkdtemp(prefix="w2a-conformance-"))
    env = {"BRIDGEWAY_PROBE_DIR": str(probe_dir)}
    # W2A-ENV-21: a SCRIPT_NAME in the process environment must not reach the environ.
    asgi_env = {**env, "SCRIPT_NAME": "/evil"}
    # gunicorn reads SCRIPT_NAME from the environment itself (and refuses other paths).
    bridged = {
        n: ServerProcess(s, APP, env=env if n.startswith("gunicorn") else asgi_env)
        for n, s in ASGI_SERVERS.items()
    }
    rooted = {n: ServerProcess(s, SHIMMED, env=asgi_env) for n, s in ROOTED.items()}
    native = ServerProcess(SERVERS["gunicorn-gthread"], NATIVE_APP, env=env)
    native_root = ServerProcess(
        SERVERS["gunicorn-gthread"], NATIVE_APP, env={**env, "SCRIPT_NAME": "/app"}
    )
    servers = [*bridged.values(), *rooted.values(), native, native_root]
    failed = True
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready(60.0)
        yield Fleet(bridged, rooted, native, native_root, probe_dir)
        failed = False
    finally:
        for server in servers:
            server.stop()
            if failed:
                print(f"server log kept: {server.log_path}")
            else:
                server.discard_log()


def new_rid() -> str:
    return uuid.uuid4().hex


def events(
    fleet: Fleet,
    rid: str,
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 5.0,
) -> list[dict[str, Any]]:
    """Poll the recorder log of ``rid`` until ``until(events)`` holds or the deadline."""
    path = fleet.probe_dir / f"{rid}.jsonl"
    deadline = time.monotonic() + timeout
    while True:
        found = []
        if path.exists():
            found = [json.loads(line) for line in path.read_text().splitlines() if line]
        if until(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)  # polling interval, bounded by the deadline


def closed(found: list[dict[str, Any]]) -> bool:
    return any(e["event"] == "close" for e in found)


def send_pieces(conn: RawConnection, pieces: list[bytes]) -> None:
    for i, piece in enumerate(pieces):
        if i:
            time.sleep(PAUSE)  # pacing: the server sees the body in several reads
        conn.send(piece)


# --- differential scenarios ----------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    items: tuple[str, ...]
    pieces: tuple[bytes, ...]
    method: str = "GET"
    echo: bool = True  # the body is the echoed environ (compare it key by key)
    responses: int = 1  # pipelined responses to read


def req(method: str, target: str, *headers: tuple[str, str], **kw: Any) -> bytes:
    return request_bytes(method, target, list(headers), **kw)


BODY = b"line one\r\nline two\ncaf\xc3\xa9 \xe6\x97\xa5\r\n" * 40 + b"last line, no newline"


def split_body(target: str, body: bytes, *cuts: int) -> tuple[bytes, ...]:
    """A POST whose body goes out in pieces cut at ``cuts`` (mid-CRLF, mid-UTF-8...)."""
    head = req("POST", target, ("Content-Length", str(len(body))))
    bounds = [0, *cuts, len(body)]
    return (head, *(body[a:b] for a, b in zip(bounds, bounds[1:], strict=False)))


def reads(mode: str, n: int = 10) -> str:
    return f"/__read?mode={mode}&n={n}"


SCENARIOS = [
    Scenario("propfind", ("W2A-ENV-02",), (req("PROPFIND", "/x"),), method="PROPFIND"),
    Scenario("purge", ("W2A-ENV-02",), (req("PURGE", "/x"),), method="PURGE"),
    Scenario("utf8-path", ("W2A-ENV-05",), (req("GET", "/caf%C3%A9"),)),
    Scenario("cjk-path", ("W2A-ENV-05",), (req("GET", "/%E6%97%A5%E6%9C%AC"),)),
    Scenario("ff-path", ("W2A-ENV-06",), (req("GET", "/%FF"),)),
    Scenario("slash-2f", ("W2A-ENV-07",), (req("GET", "/a%2Fb?x=1"),)),
    Scenario("query", ("W2A-ENV-08",), (req("GET", "/?q=%C3%A9&a+b&&c=%20"),)),
    Scenario("empty-query", ("W2A-ENV-08",), (req("GET", "/x?"),)),
    Scenario(
        "post-typed",
        ("W2A-ENV-09",),
        (req("POST", "/x", ("Content-Type", "text/plain; charset=utf-8"), body=b"abc"),),
        method="POST",
    ),
    Scenario("chunked-echo", ("W2A-ENV-09", "HTTP-06"), (req("POST", "/x", body=iter([b"ab"])),)),
    Scenario(
        "header-values",
        ("W2A-ENV-10",),
        (
            b"GET /x HTTP/1.1\r\nHost: localhost\r\nX-Foo-Bar: caf\xe9\r\nX-Empty:\r\n"
            b"X-Spaced:   v w  \r\n\r\n",
        ),
    ),
    Scenario(
        "dup-headers",
        ("W2A-ENV-11",),
        (req("GET", "/x", ("Accept", "a/b"), ("X-Dup", "1"), ("Accept", "c/d"), ("X-Dup", "2")),),
    ),
    Scenario(
        "dup-cookie",
        ("W2A-ENV-11",),
        (req("GET", "/x", ("Cookie", "a=1"), ("Cookie", "b=2")),),
    ),
    Scenario(
        "underscore-after",
        ("W2A-ENV-12",),
        (req("GET", "/x", ("X-Auth-User", "good"), ("X_Auth_User", "evil")),),
    ),
    Scenario(
        "underscore-before",
        ("W2A-ENV-12",),
        (req("GET", "/x", ("X_Auth_User", "evil"), ("X-Auth-User", "good")),),
    ),
    Scenario(
        "http10-no-host",
        ("W2A-ENV-13", "W2A-ENV-15"),
        (req("GET", "/x", host="", version="1.0"),),
    ),
    Scenario("http11", ("W2A-ENV-01", "W2A-ENV-15", "W2A-ENV-18"), (req("GET", "/x?y=1"),)),
    Scenario("read-all", ("W2A-INPUT-02",), split_body(reads("read"), BODY, 100, 700), echo=False),
    Scenario("read-none", ("W2A-INPUT-02",), split_body(reads("read-none"), BODY, 9), echo=False),
    Scenario("read-m1", ("W2A-INPUT-02",), split_body(reads("read-1"), BODY, 500), echo=False),
    Scenario("read-0", ("W2A-INPUT-02",), split_body(reads("read0"), BODY, 3), echo=False),
    Scenario(
        "read-n-trickle",
        ("W2A-INPUT-01",),
        (req("POST", reads("readn", 10), ("Content-Length", "100")),)
        + tuple(bytes([65 + i % 26]) for i in range(100)),
        echo=False,
    ),
    Scenario(
        "read-n-7", ("W2A-INPUT-01",), split_body(reads("readn", 7), BODY, 5, 600), echo=False
    ),
    # Cut in the middle of "\r\n" (offset 9) and of a UTF-8 character.
    Scenario("readline", ("W2A-INPUT-03",), split_body(reads("readline"), BODY, 9, 24), echo=False),
    Scenario(
        "readline-size",
        ("W2A-INPUT-03",),
        split_body(reads("readline-size", 5), BODY, 9, 24),
        echo=False,
    ),
    Scenario("readlines", ("W2A-INPUT-04",), split_body(reads("readlines"), BODY, 9), echo=False),
    Scenario("iter-input", ("W2A-INPUT-04",), split_body(reads("iter"), BODY, 9), echo=False),
    Scenario("after-eof", ("W2A-INPUT-05",), split_body(reads("after-eof"), BODY, 9), echo=False),
    Scenario(
        "chunked-read",
        ("W2A-INPUT-07", "HTTP-06"),
        (req("POST", reads("read"), body=iter([BODY[:300], BODY[300:301], BODY[301:]])),),
        echo=False,
    ),
    Scenario("get-read", ("W2A-INPUT-08",), (req("GET", reads("read")),), echo=False),
    Scenario(
        "cl0-read",
        ("W2A-INPUT-08",),
        (req("POST", reads("read"), body=b""),),
        echo=False,
    ),
    Scenario(
        "pipelined",
        ("HTTP-09", "W2A-INPUT-05"),
        (
            req("GET", "/one")
            + req("POST", reads("read"), body=b"first body")
            + req("POST", reads("readn", 3), body=b"second")
            + req("GET", "/two"),
        ),
        echo=False,
        responses=4,
    ),
    Scenario("one-item", ("W2A-RESP-16",), (req("GET", "/__one"),), echo=False),
    Scenario(
        "latin1-header", ("W2A-RESP-03",), (req("GET", "/__headers?case=latin1"),), echo=False
    ),
    Scenario("set-cookies", ("W2A-RESP-04",), (req("GET", "/__headers?case=cookies"),), echo=False),
    Scenario("write", ("W2A-RESP-09",), (req("GET", "/__write"),), echo=False),
    Scenario("empty-204", ("W2A-RESP-08",), (req("GET", "/__empty?s=204+No+Content"),), echo=False),
    Scenario("empty-302", ("W2A-RESP-08",), (req("GET", "/__empty?s=302+Found"),), echo=False),
    Scenario(
        "empty-304", ("W2A-RESP-08",), (req("GET", "/__empty?s=304+Not+Modified"),), echo=False
    ),
    Scenario("file-bytesio", ("EXT-01",), (req("GET", "/__file"),), echo=False),
    Scenario(
        "file-seeked",
        ("EXT-01",),
        (req("GET", "/__file?offset=100&length=50"),),
        echo=False,
    ),
    Scenario("file-path", ("EXT-01", "EXT-02"), (req("GET", "/__file?kind=path"),), echo=False),
    Scenario("head-big", ("HTTP-03",), (req("HEAD", "/__big"),), method="HEAD", echo=False),
]

# (scenario, server) pairs where the server shows a bug of its own.
SERVER_BUGS: dict[tuple[str, str], str] = {
    ("http10-no-host", "granian-asgi"): "granian 2.8.7 puts an empty `host` header in the scope"
    " of an HTTP/1.0 request without Host (printf 'GET /x HTTP/1.0\\r\\n\\r\\n' | nc:"
    " the app sees HTTP_HOST='')",
}


def _params() -> list[Any]:
    params = []
    for scenario in SCENARIOS:
        for server in BRIDGED:
            marks = []
            reason = SERVER_BUGS.get((scenario.name, server))
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            ident = f"{'+'.join(scenario.items)}:{scenario.name}:{server}"
            params.append(pytest.param(scenario, server, id=ident, marks=marks))
    return params


def run_scenario(port: int, scenario: Scenario) -> list[RawResponse]:
    with RawConnection(port, timeout=10.0) as conn:
        send_pieces(conn, list(scenario.pieces))
        return [conn.read_response(scenario.method) for _ in range(scenario.responses)]


def comparable(scenario: Scenario, response: RawResponse) -> dict[str, Any]:
    headers = [(k, v) for k, v in response.headers if k not in IGNORED_HEADERS]
    result: dict[str, Any] = {"status": response.status, "headers": headers}
    if response.status == 200 and response.body.startswith(b'{"environ"'):
        echoed = json.loads(response.body)
        environ = {
            k: v
            for k, v in echoed["environ"].items()
            if k not in NATURE and (scenario.name, k) not in DOCUMENTED
        }
        result["environ"] = environ
        result["seen_added"] = echoed["seen_added"]
        # The body's length differs with the removed keys.
        result["headers"] = [(k, v) for k, v in headers if k != b"content-length"]
    elif response.status >= 500:
        result["headers"] = []  # each server has its own error page
    else:
        result["body"] = response.body
    return result


@pytest.mark.parametrize(("scenario", "server_name"), _params())
def test_differential(fleet: Fleet, scenario: Scenario, server_name: str) -> None:
    if scenario.name not in fleet.native_cache:
        native = run_scenario(fleet.native.port, scenario)
        fleet.native_cache[scenario.name] = [comparable(scenario, r) for r in native]
    bridged = run_scenario(fleet.bridged[server_name].port, scenario)
    got = [comparable(scenario, r) for r in bridged]
    expected = fleet.native_cache[scenario.name]
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        if not any(k == b"content-length" for k, _ in theirs["headers"]):
            # The app set no length: framing is the server's (or W2A-RESP-16's) choice.
            mine["headers"] = [(k, v) for k, v in mine["headers"] if k != b"content-length"]
        assert mine.keys() == theirs.keys()
        diff = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
        if "environ" in diff:
            a, b = diff.pop("environ")
            diff["environ (bridged, native)"] = {
                k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)
            }
        assert not diff
