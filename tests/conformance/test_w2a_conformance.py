"""WSGIToASGI conformance through real ASGI servers, differential against native gunicorn.

Theory of operation: one module-scoped fleet starts, in parallel, every ASGI server of
``live.servers.ASGI_SERVERS`` hosting ``WSGIToASGI(probe)``, four of them again with a
root path (hosting the scope shim), and gunicorn gthread serving the same ``probe``
natively (twice: plain, and with ``SCRIPT_NAME=/app``). Requests are raw bytes
(``live.rawclient``), so the tests control percent-encoding, header repeats, chunking,
pacing and disconnects. A differential scenario sends the same bytes to a bridged server
and to native gunicorn and compares status, headers and body (for the echo routes, the
echoed environ with types), minus what differs by nature (``NATURE`` and
``IGNORED_HEADERS``, each with its reason). Other tests assert the docs/checklist.md
behaviour directly. The probe records events (``next``, ``close``, read errors, with
thread ids) to ``$BRIDGEWAY_PROBE_DIR/<rid>.jsonl``; tests poll that file with a deadline.

Test ids read ``ITEM[+ITEM...]:scenario:server``; ``coverage_w2a.py`` maps items to tests.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h11
import pytest

from tests.live.rawclient import RawConnection, RawResponse, exchange, request_bytes
from tests.live.servers import ASGI_SERVERS, SERVERS, ServerProcess, ServerSpec
from tests.support.known_bugs import (
    DAPHNE_BUFFERS,
    DAPHNE_HANGS,
    DAPHNE_NO_BACKPRESSURE,
    DAPHNE_NO_DATE,
    GRANIAN_EMPTY_HOST,
    HYPERCORN_LIFESPAN_EXIT_0,
    UVICORN_HTTPTOOLS_CHUNKS_10,
    KnownBug,
    marks_for,
)

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


def _replace_arg(base: str, name: str, old: str, new: str) -> ServerSpec:
    spec = SERVERS[base]
    return ServerSpec(
        name, spec.kind, lambda app, port: [new if w == old else w for w in spec.argv(app, port)]
    )


UDS_PATH = Path(tempfile.gettempdir()) / f"w2a-conformance-{uuid.uuid4().hex[:8]}.sock"
# Servers for one scenario each: (spec, app).
EXTRA = {
    # W2A-SCOPE-08: the adapter under Starlette's Mount.
    "mount": (
        _with_args("uvicorn-h11", "uvicorn-h11+mount"),
        "tests.conformance.w2a_probe:mounted",
    ),
    # W2A-SCOPE-05: workers forked from a parent that imported the adapter.
    "preload": (
        _with_args("gunicorn-uvicorn", "gunicorn-uvicorn+preload", "--preload", "-w", "2"),
        APP,
    ),
    "granian-2": (_replace_arg("granian-asgi", "granian-asgi+2workers", "1", "2"), APP),
}
TLS_DIR = Path(tempfile.gettempdir()) / f"w2a-conformance-tls-{uuid.uuid4().hex[:8]}"
CERT, KEY = str(TLS_DIR / "cert.pem"), str(TLS_DIR / "key.pem")
# W2A-ENV-17: real TLS, with a self-signed certificate made by the fixture.
TLS_SPECS = {
    "hypercorn-asyncio": _with_args(
        "hypercorn-asyncio", "hypercorn-asyncio+tls", "--certfile", CERT, "--keyfile", KEY
    ),
    "granian-asgi": _with_args(
        "granian-asgi", "granian-asgi+tls", "--ssl-certificate", CERT, "--ssl-keyfile", KEY
    ),
}
UDS_SPEC = ServerSpec(
    "uvicorn-h11+uds",
    "asgi",
    lambda app, port: [
        str(Path(SERVERS["uvicorn-h11"].argv(app, port)[0])),
        app,
        "--uds",
        str(UDS_PATH),
        "--no-access-log",
    ],
)

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
    "bridgeway.upstream": "bridgeway's own extension (the in-process round trip, _upstream.py),"
    " as gunicorn.socket is gunicorn's (docs/wsgi-to-asgi.md, In a round trip)",
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
    extra: dict[str, ServerProcess]
    uds: ServerProcess
    tls: dict[str, ServerProcess]
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
    extra = {n: ServerProcess(spec, app, env=env) for n, (spec, app) in EXTRA.items()}
    uds = ServerProcess(UDS_SPEC, APP, env=env)
    make_certificate()
    tls = {n: ServerProcess(spec, APP, env=env) for n, spec in TLS_SPECS.items()}
    tcp = [*bridged.values(), *rooted.values(), *extra.values(), native, native_root]
    servers = [*tcp, uds, *tls.values()]
    failed = True
    try:
        for server in servers:
            server.launch()
        for server in tcp:
            server.wait_ready(60.0)
        wait_uds_ready(uds)
        for server in tls.values():
            wait_tls_ready(server)
        yield Fleet(bridged, rooted, extra, uds, tls, native, native_root, probe_dir)
        failed = False
    finally:
        stop_all(servers, keep_logs=failed)
        shutil.rmtree(probe_dir, ignore_errors=True)
        shutil.rmtree(TLS_DIR, ignore_errors=True)
        UDS_PATH.unlink(missing_ok=True)


def _connection_over(sock: socket.socket, timeout: float) -> RawConnection:
    """A RawConnection over any socket (the raw client itself only does plain TCP)."""
    conn = RawConnection.__new__(RawConnection)
    conn.timeout = timeout
    conn.sock = sock
    conn._pending = b""
    conn._closed_by_peer = False
    return conn


def uds_connection(timeout: float = 5.0) -> RawConnection:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(UDS_PATH))
    return _connection_over(sock, timeout)


def tls_connection(port: int, timeout: float = 5.0) -> RawConnection:
    context = ssl.create_default_context(cafile=CERT)
    context.check_hostname = False
    context.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return _connection_over(context.wrap_socket(raw, server_hostname="localhost"), timeout)


def make_certificate() -> None:
    TLS_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            KEY,
            "-out",
            CERT,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def wait_tls_ready(server: ServerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert server.proc is not None
        assert server.proc.poll() is None, server.log()
        try:
            with tls_connection(server.port) as conn:
                conn.send(req("GET", "/ready"))
                conn.read_response()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)  # polling interval, bounded by the deadline


def wait_uds_ready(server: ServerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert server.proc is not None
        assert server.proc.poll() is None, server.log()
        try:
            with uds_connection() as conn:
                conn.send(req("GET", "/ready"))
                conn.read_response()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)  # polling interval, bounded by the deadline


def stop_all(servers: list[ServerProcess], *, keep_logs: bool) -> None:
    """Stop the servers in parallel (each stop waits for its own process)."""
    stoppers = [threading.Thread(target=server.stop) for server in servers]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join(30.0)
    for server in servers:
        if keep_logs:
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


def send_pieces(conn: RawConnection, pieces: list[bytes], pause: float = PAUSE) -> None:
    for i, piece in enumerate(pieces):
        if i:
            time.sleep(pause)  # pacing: the server sees the body in several reads
        conn.send(piece)


# --- differential scenarios ----------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    items: tuple[str, ...]
    pieces: tuple[bytes, ...]
    method: str = "GET"
    responses: int = 1  # pipelined responses to read
    pause: float = PAUSE  # between pieces


def req(method: str, target: str, *headers: tuple[str, str], **kw: Any) -> bytes:
    return request_bytes(method, target, list(headers), **kw)


BODY = b"line one\r\nline two\ncaf\xc3\xa9 \xe6\x97\xa5\r\n" * 40 + b"last line, no newline"


def split_body(target: str, body: bytes, *cuts: int) -> tuple[bytes, ...]:
    """A POST whose body goes out in pieces cut at ``cuts`` (mid-CRLF, mid-UTF-8...)."""
    head = req("POST", target, ("Content-Length", str(len(body))))
    bounds = [0, *cuts, len(body)]
    return (head, *(body[a:b] for a, b in itertools.pairwise(bounds)))


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
    Scenario("read-all", ("W2A-INPUT-02",), split_body(reads("read"), BODY, 100, 700)),
    Scenario("read-none", ("W2A-INPUT-02",), split_body(reads("read-none"), BODY, 9)),
    Scenario("read-m1", ("W2A-INPUT-02",), split_body(reads("read-1"), BODY, 500)),
    Scenario("read-0", ("W2A-INPUT-02",), split_body(reads("read0"), BODY, 3)),
    Scenario(
        "read-n-trickle",
        ("W2A-INPUT-01",),
        (
            req("POST", reads("readn", 10), ("Content-Length", "100")),
            *(bytes([65 + i % 26]) for i in range(100)),
        ),
        pause=0.005,
    ),
    Scenario("read-n-7", ("W2A-INPUT-01",), split_body(reads("readn", 7), BODY, 5, 600)),
    # Cut in the middle of "\r\n" (offset 9) and of a UTF-8 character.
    Scenario("readline", ("W2A-INPUT-03",), split_body(reads("readline"), BODY, 9, 24)),
    Scenario(
        "readline-size", ("W2A-INPUT-03",), split_body(reads("readline-size", 5), BODY, 9, 24)
    ),
    Scenario("readlines", ("W2A-INPUT-04",), split_body(reads("readlines"), BODY, 9)),
    Scenario("iter-input", ("W2A-INPUT-04",), split_body(reads("iter"), BODY, 9)),
    Scenario("after-eof", ("W2A-INPUT-05",), split_body(reads("after-eof"), BODY, 9)),
    Scenario(
        "chunked-read",
        ("W2A-INPUT-07", "HTTP-06"),
        (req("POST", reads("read"), body=iter([BODY[:300], BODY[300:301], BODY[301:]])),),
    ),
    Scenario("get-read", ("W2A-INPUT-08",), (req("GET", reads("read")),)),
    Scenario("cl0-read", ("W2A-INPUT-08",), (req("POST", reads("read"), body=b""),)),
    Scenario(
        "pipelined",
        ("HTTP-09", "W2A-INPUT-05"),
        (
            req("GET", "/one")
            + req("POST", reads("read"), body=b"first body")
            + req("POST", reads("readn", 3), body=b"second")
            + req("GET", "/two"),
        ),
        responses=4,
    ),
    Scenario("one-item", ("W2A-RESP-16",), (req("GET", "/__one"),)),
    Scenario("latin1-header", ("W2A-RESP-03",), (req("GET", "/__headers?case=latin1"),)),
    Scenario("set-cookies", ("W2A-RESP-04",), (req("GET", "/__headers?case=cookies"),)),
    Scenario("write", ("W2A-RESP-09",), (req("GET", "/__write"),)),
    Scenario("empty-204", ("W2A-RESP-08",), (req("GET", "/__empty?s=204+No+Content"),)),
    Scenario("empty-302", ("W2A-RESP-08",), (req("GET", "/__empty?s=302+Found"),)),
    Scenario("empty-304", ("W2A-RESP-08",), (req("GET", "/__empty?s=304+Not+Modified"),)),
    Scenario("file-bytesio", ("EXT-01",), (req("GET", "/__file"),)),
    Scenario("file-seeked", ("EXT-01",), (req("GET", "/__file?offset=100&length=50"),)),
    Scenario("file-path", ("EXT-01", "EXT-02"), (req("GET", "/__file?kind=path"),)),
    Scenario("head-big", ("HTTP-03",), (req("HEAD", "/__big"),), method="HEAD"),
]

# (scenario, server) pairs where the server shows a bug of its own.
SERVER_BUGS: dict[tuple[str, str], KnownBug] = {
    ("http10-no-host", "granian-asgi"): GRANIAN_EMPTY_HOST,
}


def _params() -> list[Any]:
    params = []
    for scenario in SCENARIOS:
        for server in BRIDGED:
            marks = marks_for(SERVER_BUGS.get((scenario.name, server)))
            ident = f"{'+'.join(scenario.items)}:{scenario.name}:{server}"
            params.append(pytest.param(scenario, server, id=ident, marks=marks))
    return params


def run_scenario(port: int, scenario: Scenario) -> list[RawResponse]:
    with RawConnection(port, timeout=10.0) as conn:
        send_pieces(conn, list(scenario.pieces), scenario.pause)
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
        result["environ_type"] = echoed["environ_type"]
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
        diff: dict[str, Any] = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
        if "environ" in diff:
            a, b = diff.pop("environ")
            diff["environ (bridged, native)"] = {
                k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)
            }
        assert not diff


# --- direct checks, on every bridged server ------------------------------------------

# (test name, server) pairs where the server shows a bug of its own (tests/support/known_bugs.py).
SERVER_BUGS_DIRECT: dict[tuple[str, str], KnownBug] = {
    ("download-backpressure", "daphne"): DAPHNE_NO_BACKPRESSURE,
    ("one-date", "daphne"): DAPHNE_NO_DATE,
    ("upload-backpressure", "daphne"): DAPHNE_BUFFERS,
    ("expect-reject", "daphne"): DAPHNE_BUFFERS,
    ("leave-upload", "daphne"): DAPHNE_BUFFERS,
    ("streamed-upload", "daphne"): DAPHNE_BUFFERS,
    ("raise-after", "daphne"): DAPHNE_HANGS,
    ("content-length", "daphne"): DAPHNE_HANGS,
    ("http10-stream", "uvicorn-httptools"): UVICORN_HTTPTOOLS_CHUNKS_10,
    ("http10-stream", "gunicorn-uvicorn"): UVICORN_HTTPTOOLS_CHUNKS_10,
    ("lifespan-failed", "hypercorn-asyncio"): HYPERCORN_LIFESPAN_EXIT_0,
}


def each(test: str, items: str, servers: list[str] | None = None) -> list[Any]:
    """Parameters for ``test`` on every bridged server, with ids ``items:test:server``."""
    params = []
    for server in servers or BRIDGED:
        marks = marks_for(SERVER_BUGS_DIRECT.get((test, server)))
        params.append(pytest.param(server, id=f"{items}:{test}:{server}", marks=marks))
    return params


def echo(port: int, data: bytes) -> dict[str, Any]:
    response = exchange(port, data)
    assert response.status == 200, response
    result: dict[str, Any] = json.loads(response.body)
    return result


def env_of(echoed: dict[str, Any]) -> dict[str, Any]:
    """The echoed environ's values (without their type names)."""
    return {k: v[1] for k, v in echoed["environ"].items()}


CGI_NAME = re.compile(r"^[A-Z_]+$")
SERVER_NAMESPACES = ("wsgi.", "asgi.", "bridgeway.")


@pytest.mark.parametrize(
    "server_name",
    each(
        "environ-shape",
        "W2A-ENV-01+W2A-ENV-14+W2A-ENV-16+W2A-ENV-18+W2A-ENV-19+W2A-ENV-21"
        "+W2A-SCOPE-01+W2A-SCOPE-04+EXT-04",
    ),
)
def test_environ_shape(fleet: Fleet, server_name: str) -> None:
    server = fleet.bridged[server_name]
    with RawConnection(server.port) as conn:
        conn.send(req("GET", "/first"))
        first = json.loads(conn.read_response().body)
        conn.send(req("GET", "/second"))
        second = json.loads(conn.read_response().body)
    for echoed in (first, second):
        assert echoed["environ_type"] == "dict"
        types = {k: v[0] for k, v in echoed["environ"].items()}
        values = env_of(echoed)
        # W2A-ENV-01: every CGI variable is exactly str, none is None.
        assert {k: t for k, t in types.items() if CGI_NAME.match(k) and t != "str"} == {}
        # W2A-ENV-19: anything else lives under a lower-case, dotted prefix.
        others = [k for k in values if not CGI_NAME.match(k)]
        assert [k for k in others if not k.startswith(SERVER_NAMESPACES)] == []
        # W2A-ENV-14/16: str, from the scope.
        assert values["SERVER_PORT"] == str(server.port)
        assert values["SERVER_NAME"] == "127.0.0.1"
        assert values["REMOTE_ADDR"] == "127.0.0.1"
        assert values["REMOTE_PORT"].isdigit()
        # W2A-ENV-18
        assert types["wsgi.version"] == "tuple"
        assert values["wsgi.version"] == "(1, 0)"
        assert values["wsgi.multithread"] is True
        assert values["wsgi.multiprocess"] is False
        assert values["wsgi.run_once"] is False
        assert values["wsgi.input_terminated"] is True
        assert values["wsgi.url_scheme"] == "http"
        assert "HTTPS" not in values
        assert "wsgi.file_wrapper" in values
        # W2A-ENV-21: SCRIPT_NAME=/evil in the server's environment does not leak in.
        assert values["SCRIPT_NAME"] == ""
        # EXT-04: no server here advertises early hints over HTTP/1.1: no hints key.
        assert [k for k in values if "early" in k.lower()] == []
    # W2A-ENV-01: a new dict per request; what the app added is gone.
    assert second["seen_added"] is False
    assert second["same_object"] is False
    assert "HTTP_X_PROBE_CHANGED" not in second["environ"]


@pytest.mark.parametrize("server_name", each("errors-stream", "W2A-ENV-18"))
def test_errors_stream_goes_to_the_server_log(fleet: Fleet, server_name: str) -> None:
    server = fleet.bridged[server_name]
    assert echo(server.port, req("GET", "/__errors")) == {"ok": True}
    deadline = time.monotonic() + 5.0
    while "probe-errors é✓" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the log file, bounded by the deadline
    log = server.log()
    assert "probe-errors é✓" in log
    assert "probe-lines ü" in log


@pytest.mark.parametrize("server_name", each("header-cap", "W2A-ENV-22+W2A-ENV-11"))
def test_repeated_header_cap(fleet: Fleet, server_name: str) -> None:
    port = fleet.bridged[server_name].port
    started = time.monotonic()
    response = exchange(port, req("GET", "/x", *[("X-A", "1")] * 150))
    # bridgeway's cap (400, before the app runs) or the server's own limit (431).
    assert response.status in (400, 431)
    allowed = echo(port, req("GET", "/x", *[("X-A", str(i)) for i in range(99)]))
    assert env_of(allowed)["HTTP_X_A"] == ",".join(str(i) for i in range(99))
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("server_name", each("raw-utf8", "W2A-ENV-05+W2A-ENV-08"))
def test_raw_utf8_bytes_in_the_request_line(fleet: Fleet, server_name: str) -> None:
    response = exchange(
        fleet.bridged[server_name].port,
        b"GET /caf\xc3\xa9?q=\xc3\xa9 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    if response.status == 400:
        return  # the server refuses non-ASCII request targets itself (RFC 9112 allows it)
    assert response.status == 200
    values = env_of(json.loads(response.body))
    assert values["PATH_INFO"] == "/caf\xc3\xa9"
    assert values["QUERY_STRING"] == "q=\xc3\xa9"


@pytest.mark.parametrize("server_name", each("options-asterisk", "W2A-ENV-20"))
def test_options_asterisk(fleet: Fleet, server_name: str) -> None:
    response = exchange(fleet.bridged[server_name].port, req("OPTIONS", "*"), method="OPTIONS")
    assert response.status < 500
    if response.status == 200 and response.body.startswith(b'{"environ"'):
        values = env_of(json.loads(response.body))
        assert (values["SCRIPT_NAME"], values["PATH_INFO"]) == ("", "*")


@pytest.mark.parametrize("server_name", each("proxy-headers", "W2A-ENV-16+W2A-ENV-17"))
def test_client_and_scheme_follow_the_server(fleet: Fleet, server_name: str) -> None:
    values = env_of(
        echo(
            fleet.bridged[server_name].port,
            req("GET", "/x", ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https")),
        )
    )
    if server_name in UVICORNS:
        # uvicorn trusts proxy headers from 127.0.0.1 by default: the scope says so.
        assert values["REMOTE_ADDR"] == "1.2.3.4"
        assert values["wsgi.url_scheme"] == "https"
        assert values["HTTPS"] == "on"
    else:
        # No proxy handling in these servers by default, and none in the adapter.
        assert values["REMOTE_ADDR"] == "127.0.0.1"
        assert values["wsgi.url_scheme"] == "http"
        assert "HTTPS" not in values


@pytest.mark.parametrize("server_name", each("root-path", "W2A-ENV-03+W2A-ENV-04", list(ROOTED)))
def test_root_path_from_the_server(fleet: Fleet, server_name: str) -> None:
    values = env_of(echo(fleet.rooted[server_name].port, req("GET", "/x")))
    assert (values["SCRIPT_NAME"], values["PATH_INFO"]) == ("/app", "/x")
    native = env_of(echo(fleet.native_root.port, req("GET", "/app/x")))
    assert (native["SCRIPT_NAME"], native["PATH_INFO"]) == ("/app", "/x")


SHIM_CASES = [
    # (items, shim headers, target, expected SCRIPT_NAME, PATH_INFO, RAW_URI or None)
    (
        "W2A-ENV-04",
        [("root-path", "/app"), ("path", "/application/z")],
        "/application/z",
        "/app",
        "/application/z",
    ),
    ("W2A-ENV-04", [("root-path", "/app"), ("path", "/app")], "/app", "/app", ""),
    ("W2A-ENV-03", [("root-path", "/"), ("path", "/x")], "/x", "", "/x"),
    ("W2A-ENV-03", [("root-path", "/app/"), ("path", "/app/x")], "/app/x", "/app", "/x"),
    ("W2A-ENV-06", [("root-path", ""), ("path", "/rewritten")], "/%FF", "", "/rewritten"),
    (
        "W2A-ENV-06",
        [("root-path", ""), ("path", "/\xef\xbf\xbd"), ("no-raw-path", "1")],
        "/%FF",
        "",
        "/\xef\xbf\xbd",
    ),
]


@pytest.mark.parametrize(
    ("case", "server_name"),
    [
        pytest.param(i, s, id=f"{c[0]}:shim-{i}:{s}")
        for i, c in enumerate(SHIM_CASES)
        for s in ROOTED
    ],
)
def test_scope_shapes_through_a_shim(fleet: Fleet, case: int, server_name: str) -> None:
    _items, shim, target, script_name, path_info = SHIM_CASES[case]
    headers = [(f"X-Shim-{name}", value) for name, value in shim]
    values = env_of(echo(fleet.rooted[server_name].port, req("GET", target, *headers)))
    assert (values["SCRIPT_NAME"], values["PATH_INFO"]) == (script_name, path_info)
    if ("no-raw-path", "1") in shim:
        assert "RAW_URI" not in values


def read_truncatable(conn: RawConnection, method: str = "GET") -> RawResponse:
    """One response; a server aborting it mid-body gives ``complete=False``, not an error."""
    response, parser = conn.read_head(method)
    try:
        while not response.complete:
            before = len(response.body)
            conn.read_body(response, parser, limit=before + 1)
            if len(response.body) == before and not response.complete:
                break  # connection closed cleanly (HTTP/1.0 style end)
    except h11.RemoteProtocolError:
        response.complete = False
    return response


def read_informational(conn: RawConnection, timeout: float) -> bytes:
    """Bytes the server sends within ``timeout`` (a 100 Continue, or nothing)."""
    conn.sock.settimeout(timeout)
    try:
        data = conn.sock.recv(65536)
    except TimeoutError:
        data = b""
    finally:
        conn.sock.settimeout(conn.timeout)
    return data


@pytest.mark.parametrize("server_name", each("expect-reject", "HTTP-01"))
def test_expect_continue_rejected_without_reading(fleet: Fleet, server_name: str) -> None:
    with RawConnection(fleet.bridged[server_name].port, timeout=3.0) as conn:
        started = time.monotonic()
        conn.send(
            req("POST", "/__reject", ("Expect", "100-continue"), ("Content-Length", "1048576"))
        )
        response = conn.read_response("POST")
        assert response.status == 413
        assert time.monotonic() - started < 2.0
        if server_name in UVICORNS:
            # uvicorn sends 100 only on the app's first receive(): the adapter never
            # called it, so the client may skip the upload.
            assert response.informational == []


@pytest.mark.parametrize("server_name", each("expect-read", "HTTP-01"))
def test_expect_continue_then_body(fleet: Fleet, server_name: str) -> None:
    body = b"x" * 5000
    with RawConnection(fleet.bridged[server_name].port, timeout=5.0) as conn:
        conn.send(
            req("POST", reads("read"), ("Expect", "100-continue"), ("Content-Length", "5000"))
        )
        early = read_informational(conn, 2.0)
        if early:
            assert early.startswith(b"HTTP/1.1 100")
        conn.send(body)
        response = conn.read_response("POST")
    assert response.status == 200
    assert json.loads(response.body)["length"] == len(body)


@pytest.mark.parametrize("server_name", each("keep-alive", "HTTP-05+HTTP-03+W2A-RESP-08"))
def test_keep_alive_after_every_kind_of_response(fleet: Fleet, server_name: str) -> None:
    with RawConnection(fleet.bridged[server_name].port, timeout=5.0) as conn:
        steps = [
            ("GET", "/__big?size=1000", 200, 1000),
            ("GET", "/__stream?n=3&size=10", 200, 30),
            ("GET", "/__empty?s=204+No+Content", 204, 0),
            ("GET", "/__empty?s=304+Not+Modified", 304, 0),
            ("HEAD", "/__big", 200, 0),
            ("GET", "/__big", 200, 1 << 20),
        ]
        for method, target, status, length in steps:
            conn.send(req(method, target))
            response = conn.read_response(method)
            assert (response.status, len(response.body), response.complete) == (
                status,
                length,
                True,
            ), target
            if method == "HEAD":
                assert response.header("content-length") == str(1 << 20)


@pytest.mark.parametrize("server_name", each("http10-stream", "HTTP-07"))
def test_streamed_response_to_an_http10_client(fleet: Fleet, server_name: str) -> None:
    with RawConnection(fleet.bridged[server_name].port, timeout=5.0) as conn:
        conn.send(req("GET", "/__stream?n=3&size=10", version="1.0"))
        raw = conn.read_until_close(deadline=5.0)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.")
    assert b" 200 " in head.split(b"\r\n")[0] + b" "
    assert body == (b"x" * 9 + b"\n") * 3


@pytest.mark.parametrize("server_name", each("te-and-cl", "HTTP-06"))
def test_transfer_encoding_overrides_content_length(fleet: Fleet, server_name: str) -> None:
    data = (
        b"POST /__read?mode=read HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n"
    )
    with RawConnection(fleet.bridged[server_name].port, timeout=5.0) as conn:
        conn.send(data)
        response = conn.read_response("POST")
    if response.status == 400:
        return  # the server refuses the ambiguous framing (h11 does): fine
    assert response.status == 200
    assert json.loads(response.body)["length"] == len(b"hello world")


@pytest.mark.parametrize("server_name", each("bad-status", "W2A-RESP-01"))
def test_status_is_checked_at_start_response(fleet: Fleet, server_name: str) -> None:
    port = fleet.bridged[server_name].port
    # A 1xx or 6xx line is not among them: gunicorn, waitress, werkzeug and wsgiref
    # send it as the app gave it (issue 13 point 4); test_round_trip_carry covers it.
    bad = ("2000 X", "200 OK\r\n", "int", "OK", "99 Low", "099 Low")
    outcome = {}
    for status in bad:
        target = "/__status?catch=1&s=" + urllib.parse.quote(status)
        body = exchange(port, req("GET", target)).body
        outcome[status] = json.loads(body)["raised"] if body.startswith(b"{") else "accepted"
    assert {k: v for k, v in outcome.items() if v not in ("ValueError", "TypeError")} == {}
    assert exchange(port, req("GET", "/__status?s=2000+X")).status == 500
    custom = exchange(port, req("GET", "/__status?s=299+Custom"))
    assert custom.status == 299
    assert custom.body == b"status set\n"


@pytest.mark.parametrize("server_name", each("bad-headers", "W2A-RESP-02"))
def test_bad_response_headers_raise_in_the_app(fleet: Fleet, server_name: str) -> None:
    for case in ("crlf", "space-name", "snowman"):
        response = exchange(fleet.bridged[server_name].port, req("GET", f"/__headers?case={case}"))
        assert json.loads(response.body)["raised"] in ("ValueError", "TypeError"), case
        assert not any(k in (b"set-cookie", b"x-a", b"x a") for k, _ in response.headers)


@pytest.mark.parametrize("server_name", each("hop-by-hop", "W2A-RESP-05+HTTP-05"))
def test_hop_by_hop_headers_from_the_app(fleet: Fleet, server_name: str) -> None:
    with RawConnection(fleet.bridged[server_name].port, timeout=5.0) as conn:
        conn.send(req("GET", "/__headers?case=hop"))
        response = conn.read_response()
        assert (response.status, response.body, response.complete) == (200, b"ok", True)
        assert response.header("keep-alive") is None
        conn.send(req("GET", "/after"))
        assert env_of(json.loads(conn.read_response().body))["PATH_INFO"] == "/after"


@pytest.mark.parametrize("server_name", each("one-date", "HTTP-10+W2A-RESP-17+W2A-RESP-16"))
def test_server_managed_headers_are_not_duplicated(fleet: Fleet, server_name: str) -> None:
    port = fleet.bridged[server_name].port
    twice = exchange(port, req("GET", "/__headers?case=cl-twice"))
    names = [k for k, _ in twice.headers]
    assert (twice.status, twice.body) == (200, b"ok")
    assert names.count(b"content-length") == 1
    assert names.count(b"date") == 1
    assert names.count(b"server") <= 1
    conflict = exchange(port, req("GET", "/__headers?case=cl-conflict"))
    assert json.loads(conflict.body)["raised"] in ("ValueError", "TypeError")
    one = exchange(port, req("GET", "/__one"))
    assert (one.header("content-length"), one.header("transfer-encoding")) == ("5", None)


@pytest.mark.parametrize("server_name", each("exc-info", "W2A-RESP-06"))
def test_exc_info_replaces_unsent_headers(fleet: Fleet, server_name: str) -> None:
    response = exchange(fleet.bridged[server_name].port, req("GET", "/__excinfo"))
    assert (response.status, response.header("x-error"), response.body) == (
        500,
        "1",
        b"error page",
    )


@pytest.mark.parametrize("server_name", each("raise-early", "W2A-RESP-07+W2A-RESP-12+W2A-RESP-13"))
def test_errors_before_headers_become_a_clean_500(fleet: Fleet, server_name: str) -> None:
    port = fleet.bridged[server_name].port
    for stage in ("call", "first", "empty"):
        rid = new_rid()
        response = exchange(port, req("GET", f"/__raise?stage={stage}&rid={rid}"))
        assert response.status == 500
        assert b"Traceback" not in response.body
        assert b"probe:" not in response.body
        if stage != "call":
            found = events(fleet, rid, closed)
            assert [e["event"] for e in found] == ["call", "close"]


def assert_closed_once_on_the_iterating_thread(found: list[dict[str, Any]]) -> None:
    assert [e["event"] for e in found].count("close") == 1
    threads = {e["thread"] for e in found if e["event"] in ("next", "close")}
    assert len(threads) == 1


@pytest.mark.parametrize(
    "server_name", each("raise-after", "W2A-RESP-12+W2A-RESP-13+W2A-RESP-11+HTTP-05")
)
def test_errors_after_headers_abort_the_response(fleet: Fleet, server_name: str) -> None:
    port = fleet.bridged[server_name].port
    rid = new_rid()
    with RawConnection(port, timeout=3.0) as conn:
        conn.send(req("GET", f"/__raise?stage=after&rid={rid}"))
        response = read_truncatable(conn)
        # Never a clean end: no terminating chunk, and the connection is not reused.
        assert response.status == 200
        assert not response.complete
        assert response.body.startswith(b"chunk 0\n")
    assert_closed_once_on_the_iterating_thread(events(fleet, rid, closed))
    assert exchange(port, req("GET", "/__str")).status == 500
    with RawConnection(port, timeout=3.0) as conn:
        conn.send(req("GET", "/__str?after=1"))
        late = read_truncatable(conn)
        assert (late.status, late.complete) == (200, False)


@pytest.mark.parametrize("server_name", each("content-length", "W2A-RESP-15+W2A-RESP-13+HTTP-09"))
def test_content_length_is_enforced(fleet: Fleet, server_name: str) -> None:
    port = fleet.bridged[server_name].port
    rid = new_rid()
    with RawConnection(port, timeout=3.0) as conn:
        conn.send(req("GET", f"/__length?declared=5&sent=10&rid={rid}") + req("GET", "/next"))
        first = conn.read_response()
        assert (first.status, first.body, first.complete) == (200, b"x" * 5, True)
        second = conn.read_response()
        assert env_of(json.loads(second.body))["PATH_INFO"] == "/next"
    with RawConnection(port, timeout=3.0) as conn:
        conn.send(req("GET", "/__length?declared=10&sent=5"))
        short = read_truncatable(conn)
        assert (short.status, short.complete) == (200, False)
    assert_closed_once_on_the_iterating_thread(events(fleet, rid, closed))


@pytest.mark.parametrize("server_name", each("204-body", "W2A-RESP-17+HTTP-05"))
def test_204_with_a_body_stays_clean(fleet: Fleet, server_name: str) -> None:
    with RawConnection(fleet.bridged[server_name].port, timeout=5.0) as conn:
        for status in ("204+No+Content", "304+Not+Modified"):
            conn.send(req("GET", f"/__empty?s={status}&body=oops"))
            response = conn.read_response()
            assert (response.status, response.body, response.complete) == (
                int(status[:3]),
                b"",
                True,
            )
            conn.send(req("GET", "/after"))
            assert conn.read_response().status == 200


@pytest.mark.parametrize(
    "server_name", each("stream", "W2A-RESP-10+W2A-RESP-13+W2A-RESP-07+EXT-05")
)
def test_stream_chunks_arrive_as_yielded(fleet: Fleet, server_name: str) -> None:
    rid = new_rid()
    with RawConnection(fleet.bridged[server_name].port, timeout=5.0) as conn:
        started = time.monotonic()
        conn.send(req("GET", f"/__stream?n=3&size=10&delay=0.5&rid={rid}"))
        head, parser = conn.read_head()
        conn.read_body(head, parser, limit=10)
        first = time.monotonic() - started
        conn.read_body(head, parser)
        total = time.monotonic() - started
    assert head.body == (b"x" * 9 + b"\n") * 3
    assert head.complete
    # The first chunk does not wait for the later ones (each is 0.5 s apart).
    assert total - first >= 0.8
    assert head.header("trailer") is None
    assert_closed_once_on_the_iterating_thread(events(fleet, rid, closed))


@pytest.mark.parametrize("server_name", each("leave-download", "W2A-RESP-14+W2A-RESP-13"))
def test_client_leaving_mid_download_stops_the_app(fleet: Fleet, server_name: str) -> None:
    rid = new_rid()
    conn = RawConnection(fleet.bridged[server_name].port, timeout=5.0)
    try:
        conn.send(req("GET", f"/__stream?size=100&delay=0.1&rid={rid}"))
        head, parser = conn.read_head()
        conn.read_body(head, parser, limit=300)
    finally:
        conn.close()
    left = time.monotonic()
    found = events(fleet, rid, closed, timeout=5.0)
    assert_closed_once_on_the_iterating_thread(found)
    late = [e for e in found if e["event"] == "next" and e["t"] > left]
    assert len(late) <= 2


@pytest.mark.parametrize("server_name", each("leave-upload", "W2A-INPUT-09+W2A-INPUT-10"))
def test_client_leaving_mid_upload_is_an_error(fleet: Fleet, server_name: str) -> None:
    port = fleet.bridged[server_name].port
    for framing in ("length", "chunked"):
        rid = new_rid()
        target = f"/__read?mode=read&rid={rid}"
        conn = RawConnection(port, timeout=3.0)
        try:
            if framing == "length":
                conn.send(req("POST", target, ("Content-Length", "1000")) + b"0123456789")
            else:
                conn.send(
                    req("POST", target, ("Transfer-Encoding", "chunked")) + b"a\r\n0123456789\r\n"
                )
            # The app is blocked in read() before the client leaves.
            events(fleet, rid, lambda found: bool(found), timeout=3.0)
        finally:
            conn.close()
        left = time.monotonic()
        found = events(fleet, rid, lambda f: any(e["event"] == "read-error" for e in f))
        errors = [e for e in found if e["event"] == "read-error"]
        assert errors, f"{framing}: a truncated body was presented as complete"
        assert errors[0]["type"] == "ClientDisconnected"
        assert errors[0]["oserror"] is True
        assert errors[0]["t"] - left < 1.0


@pytest.mark.parametrize("server_name", each("streamed-upload", "W2A-INPUT-06+W2A-INPUT-12"))
def test_app_runs_before_the_body_has_arrived(fleet: Fleet, server_name: str) -> None:
    rid = new_rid()
    port = fleet.bridged[server_name].port
    with RawConnection(port, timeout=3.0) as conn:
        conn.send(req("POST", f"/__read?mode=read&rid={rid}", ("Content-Length", "2048")))
        conn.send(b"a" * 1024)
        found = events(fleet, rid, lambda f: bool(f), timeout=3.0)
        assert [e["event"] for e in found] == ["call"]  # called while half the body is out
        conn.send(b"b" * 1024)
        assert json.loads(conn.read_response("POST").body)["length"] == 2048
        # W2A-INPUT-12: an app closing wsgi.input does no harm.
        conn.send(req("POST", "/__close-input", body=b"unread"))
        assert json.loads(conn.read_response("POST").body) == {"seekable": False}
        conn.send(req("GET", "/after"))
        assert conn.read_response().status == 200


@pytest.mark.parametrize("server_name", each("unread-body", "W2A-INPUT-08"))
def test_unread_body_never_deadlocks(fleet: Fleet, server_name: str) -> None:
    port = fleet.bridged[server_name].port
    body = b"u" * (8 << 20)
    with RawConnection(port, timeout=10.0) as conn:
        conn.send(req("POST", "/__reject", ("Content-Length", str(len(body)))))
        sender = threading.Thread(target=_send_quietly, args=(conn, body), daemon=True)
        sender.start()
        started = time.monotonic()
        response = conn.read_response("POST")
        assert response.status == 413
        assert time.monotonic() - started < 3.0
        sender.join(10.0)
    # The connection may have been closed by the server; a new one always works.
    assert exchange(port, req("GET", "/after")).status == 200


def _send_quietly(conn: RawConnection, data: bytes) -> None:
    # The server may close the connection without reading the body: allowed.
    with contextlib.suppress(OSError):
        conn.send(data)


@pytest.mark.parametrize("server_name", each("websocket", "W2A-SCOPE-06"))
def test_websocket_is_refused_cleanly(fleet: Fleet, server_name: str) -> None:
    server = fleet.bridged[server_name]
    log_before = len(server.log())
    response = exchange(
        server.port,
        req(
            "GET",
            "/ws",
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ),
    )
    assert response.status != 101
    assert 400 <= response.status < 500 or response.status == 200
    assert "Traceback" not in server.log()[log_before:]


@pytest.mark.parametrize("server_name", each("concurrency", "W2A-RESP-18"))
def test_blocking_requests_run_in_parallel(fleet: Fleet, server_name: str) -> None:
    port = fleet.bridged[server_name].port
    results: list[int] = []

    def slow() -> None:
        results.append(exchange(port, req("GET", "/__stream?n=1&size=10&delay=1")).status)

    threads = [threading.Thread(target=slow) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    ping = time.monotonic()
    assert exchange(port, req("GET", "/ping")).status == 200
    assert time.monotonic() - ping < 1.0
    for thread in threads:
        thread.join(10.0)
    assert results == [200] * 4
    assert time.monotonic() - started < 3.0  # one at a time would take 4 s


# --- scope shapes, process models, files ---------------------------------------------


@pytest.mark.parametrize("server_name", each("unknown-scope", "W2A-SCOPE-07", list(ROOTED)))
def test_unknown_scope_type_is_refused(fleet: Fleet, server_name: str) -> None:
    result = echo(fleet.rooted[server_name].port, req("GET", "/x", ("X-Shim-Type", "foo")))
    assert result["outcome"].startswith("ServerContractError")
    assert "'foo'" in result["outcome"]
    assert result["received"] is False


@pytest.mark.parametrize("server_name", each("mount", "W2A-SCOPE-08", ["uvicorn-h11"]))
def test_under_starlette_mount(fleet: Fleet, server_name: str) -> None:
    values = env_of(echo(fleet.extra["mount"].port, req("GET", "/mnt/x%20y?q=1")))
    assert (values["SCRIPT_NAME"], values["PATH_INFO"]) == ("/mnt", "/x y")
    assert values["QUERY_STRING"] == "q=1"


@pytest.mark.parametrize(
    "server_name", each("prefork", "W2A-SCOPE-05", ["gunicorn-uvicorn", "granian-asgi"])
)
def test_forked_workers_all_serve(fleet: Fleet, server_name: str) -> None:
    key = "preload" if server_name == "gunicorn-uvicorn" else "granian-2"
    port = fleet.extra[key].port
    statuses: list[int] = []

    def client() -> None:
        for _ in range(10):
            statuses.append(exchange(port, req("GET", "/__stream?n=2&size=10")).status)

    threads = [threading.Thread(target=client) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20.0)
    assert statuses == [200] * 100


@pytest.mark.parametrize("server_name", each("uds", "W2A-ENV-14+W2A-ENV-16", ["uvicorn-h11"]))
def test_unix_socket_server_and_client(fleet: Fleet, server_name: str) -> None:
    with uds_connection() as conn:
        conn.send(req("GET", "/x", host="example.com:8080"))
        response = conn.read_response()
    values = env_of(json.loads(response.body))
    types = {k: v[0] for k, v in json.loads(response.body)["environ"].items()}
    assert (values["SERVER_NAME"], values["SERVER_PORT"]) == ("example.com", "8080")
    assert types["SERVER_PORT"] == "str"
    assert str(UDS_PATH) not in (values.get("SERVER_PORT"), values.get("REMOTE_PORT"))
    assert values.get("REMOTE_ADDR") != "None"
    assert values.get("REMOTE_PORT") != "None"


@pytest.mark.parametrize("server_name", each("file-abort", "EXT-03+W2A-RESP-14"))
def test_aborted_file_download_closes_the_file(fleet: Fleet, server_name: str) -> None:
    rid = new_rid()
    conn = RawConnection(fleet.bridged[server_name].port, timeout=5.0)
    try:
        conn.send(req("GET", f"/__file-abort?rid={rid}"))
        head, parser = conn.read_head()
        conn.read_body(head, parser, limit=256 * 1024)
    finally:
        conn.close()
    found = events(fleet, rid, lambda f: any(e["event"] == "file-close" for e in f))
    assert [e["event"] for e in found].count("file-close") == 1
    reads_done = [e for e in found if e["event"] == "file-read"]
    assert len(reads_done) < 1024  # stopped long before the 64 MiB end


@pytest.mark.parametrize("server_name", each("late-read", "W2A-INPUT-11"))
def test_reading_input_after_the_response(fleet: Fleet, server_name: str) -> None:
    rid = new_rid()
    response = exchange(fleet.bridged[server_name].port, req("GET", f"/__late-read?rid={rid}"))
    assert response.body == b"done"
    found = events(fleet, rid, lambda f: sum(e["event"] == "late-read" for e in f) == 2)
    late = {e["where"]: e["result"] for e in found if e["event"] == "late-read"}
    assert late.keys() == {"close", "thread"}
    for result in late.values():
        assert result == "b''" or not result.startswith("b'")


# --- lifespan: servers stopped by the tests themselves --------------------------------

LIFESPAN_SERVERS = {
    "uvicorn-h11": _with_args("uvicorn-h11", "uvicorn-h11+lifespan", "--lifespan", "on"),
    "hypercorn-asyncio": SERVERS["hypercorn-asyncio"],
    "granian-asgi": SERVERS["granian-asgi"],
}
HOOKS_APP = "tests.conformance.w2a_probe:with_hooks"
FAILING_APP = "tests.conformance.w2a_probe:failing_startup"


@dataclass
class LifespanFleet:
    hooks: dict[str, tuple[ServerProcess, str]]  # server, its lifespan recorder rid
    failing: dict[str, ServerProcess]


@pytest.fixture(scope="module")
def lifespan_fleet(fleet: Fleet) -> Iterator[LifespanFleet]:
    hooks = {}
    for name, spec in LIFESPAN_SERVERS.items():
        rid = new_rid()
        env = {"BRIDGEWAY_PROBE_DIR": str(fleet.probe_dir), "BRIDGEWAY_PROBE_LIFESPAN_RID": rid}
        hooks[name] = (ServerProcess(spec, HOOKS_APP, env=env), rid)
    failing = {name: ServerProcess(spec, FAILING_APP) for name, spec in LIFESPAN_SERVERS.items()}
    servers = [server for server, _ in hooks.values()] + list(failing.values())
    try:
        for server in servers:
            server.launch()
        for server, _ in hooks.values():
            server.wait_ready(60.0)
        yield LifespanFleet(hooks, failing)
    finally:
        stop_all(servers, keep_logs=False)


@pytest.mark.parametrize(
    "server_name", each("lifespan-shutdown", "W2A-SCOPE-02", list(LIFESPAN_SERVERS))
)
def test_lifespan_shutdown_waits_for_requests(
    fleet: Fleet, lifespan_fleet: LifespanFleet, server_name: str
) -> None:
    server, lifespan_rid = lifespan_fleet.hooks[server_name]
    rid = new_rid()
    responses: list[RawResponse] = []

    def slow_request() -> None:
        responses.append(
            exchange(server.port, req("GET", f"/__stream?n=1&size=10&delay=2&rid={rid}"))
        )

    client = threading.Thread(target=slow_request)
    client.start()
    assert events(fleet, rid, lambda f: bool(f))  # the request is in the app
    exit_code = server.stop()
    client.join(10.0)
    assert [(r.status, r.body, r.complete) for r in responses] == [(200, b"x" * 9 + b"\n", True)]
    request = events(fleet, rid, closed)
    lifespan = events(fleet, lifespan_rid, lambda f: len(f) == 2)
    assert [e["event"] for e in lifespan] == ["startup", "shutdown"]
    close_time = next(e["t"] for e in request if e["event"] == "close")
    assert lifespan[1]["t"] >= close_time
    assert exit_code is not None  # it stopped (uvicorn re-raises SIGTERM: -15)


@pytest.mark.parametrize(
    "server_name", each("lifespan-failed", "W2A-SCOPE-03", list(LIFESPAN_SERVERS))
)
def test_failing_startup_hook_stops_the_server(
    lifespan_fleet: LifespanFleet, server_name: str
) -> None:
    server = lifespan_fleet.failing[server_name]
    assert server.proc is not None
    try:
        code = server.proc.wait(timeout=30.0)
    except Exception:
        pytest.fail(f"still running with a failed startup hook:\n{server.log()}")
    assert code != 0
    assert "startup hook failed on purpose" in server.log()


# --- timing and backpressure -----------------------------------------------------------


@pytest.mark.parametrize("server_name", each("write-timing", "W2A-RESP-09"))
def test_write_reaches_the_client_at_once(fleet: Fleet, server_name: str) -> None:
    with RawConnection(fleet.bridged[server_name].port, timeout=5.0) as conn:
        started = time.monotonic()
        conn.send(req("GET", "/__write?delay=1"))
        head, parser = conn.read_head()
        conn.read_body(head, parser, limit=1)
        first = time.monotonic() - started
        conn.read_body(head, parser)
        total = time.monotonic() - started
    assert head.body == b"abc"
    assert total - first >= 0.8  # "a" left before the app's 1 s pause, not with "b"


@pytest.mark.parametrize("server_name", each("lazy-headers", "W2A-RESP-07"))
def test_empty_chunks_do_not_send_the_headers(fleet: Fleet, server_name: str) -> None:
    with RawConnection(fleet.bridged[server_name].port, timeout=5.0) as conn:
        started = time.monotonic()
        conn.send(req("GET", "/__lazy"))
        response, parser = conn.read_head()
        waited = time.monotonic() - started
        conn.read_body(response, parser)
    assert (response.status, response.body, response.complete) == (200, b"x", True)
    assert waited >= 0.55  # the head left with the first non-empty chunk, not before


@pytest.mark.parametrize("server_name", each("head-close", "HTTP-03+W2A-RESP-13"))
def test_head_response_closes_the_iterable(fleet: Fleet, server_name: str) -> None:
    rid = new_rid()
    with RawConnection(fleet.bridged[server_name].port, timeout=5.0) as conn:
        conn.send(req("HEAD", f"/__stream?n=3&size=10&rid={rid}") + req("GET", "/after"))
        head = conn.read_response("HEAD")
        assert (head.status, head.body, head.complete) == (200, b"", True)
        assert env_of(json.loads(conn.read_response().body))["PATH_INFO"] == "/after"
        # write() and wsgi.file_wrapper bodies are dropped for HEAD too.
        for target in ("/__write", "/__file"):
            conn.send(req("HEAD", target) + req("GET", "/after"))
            head = conn.read_response("HEAD")
            assert (head.status, head.body, head.complete) == (200, b"", True)
            assert conn.read_response().status == 200
    assert [e["event"] for e in events(fleet, rid, closed)].count("close") == 1


CHUNK = 1 << 20


@pytest.mark.parametrize("server_name", each("download-backpressure", "W2A-RESP-10"))
def test_slow_reader_holds_the_generator_back(fleet: Fleet, server_name: str) -> None:
    rid = new_rid()
    conn = RawConnection(fleet.bridged[server_name].port, timeout=5.0)
    try:
        conn.send(req("GET", f"/__stream?size={CHUNK}&rid={rid}"))
        head, parser = conn.read_head()
        conn.read_body(head, parser, limit=2 * CHUNK)
        # The client stops reading; an unbounded queue would run the generator on and on.
        found = events(fleet, rid, lambda f: len(f) > 200, timeout=1.0)
    finally:
        conn.close()
    produced = sum(e["event"] == "next" for e in found)
    # What was read, plus the socket buffers on both sides, plus ~2 chunks in flight.
    assert produced < 40, f"{produced} MiB produced for a client that read 2 MiB"
    events(fleet, rid, closed)


@pytest.mark.parametrize("server_name", each("upload-backpressure", "W2A-INPUT-06"))
def test_slow_app_holds_the_upload_back(fleet: Fleet, server_name: str) -> None:
    size = 256 << 20
    conn = RawConnection(fleet.bridged[server_name].port, timeout=5.0)
    sent = 0
    try:
        conn.send(req("POST", "/__read?mode=read&delay=3", ("Content-Length", str(size))))
        conn.sock.settimeout(0.2)
        piece = b"u" * 65536
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and sent < size:
            # A timeout means the socket is full: flow control pushes back, as it should.
            with contextlib.suppress(TimeoutError):
                sent += conn.sock.send(piece)
    finally:
        conn.close()
    # The app has not read a byte yet: only buffers (a few MiB) may have been taken.
    assert sent < 48 << 20, f"{sent >> 20} MiB taken while the app read nothing"


# --- HTTP/2 (cleartext, prior knowledge) ----------------------------------------------

H2_SERVERS = ["hypercorn-asyncio", "hypercorn-trio", "granian-asgi"]


@dataclass
class H2Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    reset: bool = False


def h2_get(port: int, target: str, *extra: tuple[str, str]) -> H2Response:
    """One HTTP/2 GET over a new cleartext connection (h2c with prior knowledge)."""
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    conn = h2.connection.H2Connection(config=config)
    headers = [
        (b":method", b"GET"),
        (b":path", target.encode()),
        (b":scheme", b"http"),
        (b":authority", b"example.com:1234"),
        *((k.encode(), v.encode()) for k, v in extra),
    ]
    response = H2Response(0, [], b"")
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
        conn.initiate_connection()
        conn.send_headers(1, headers, end_stream=True)
        sock.sendall(conn.data_to_send())
        done = False
        while not done:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    pairs = [(bytes(k), bytes(v)) for k, v in event.headers or []]
                    response.status = int(dict(pairs)[b":status"])
                    response.headers = [(k, v) for k, v in pairs if not k.startswith(b":")]
                elif isinstance(event, h2.events.DataReceived):
                    chunks.append(bytes(event.data or b""))
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.StreamEnded):
                    done = True
                elif isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
                    response.reset = done = True
            sock.sendall(conn.data_to_send())
    response.body = b"".join(chunks)
    return response


@pytest.mark.parametrize(
    "server_name", each("h2-environ", "W2A-ENV-11+W2A-ENV-13+W2A-ENV-15", H2_SERVERS)
)
def test_http2_request_environ(fleet: Fleet, server_name: str) -> None:
    response = h2_get(
        fleet.bridged[server_name].port, "/x?y=1", ("cookie", "a=1"), ("cookie", "b=2")
    )
    assert response.status == 200
    values = env_of(json.loads(response.body))
    assert values["SERVER_PROTOCOL"] == "HTTP/2"
    assert values["HTTP_HOST"] == "example.com:1234"
    assert values["HTTP_COOKIE"] == "a=1; b=2"
    assert values["QUERY_STRING"] == "y=1"


@pytest.mark.parametrize(
    "server_name", each("h2-response", "W2A-RESP-04+W2A-RESP-05+HTTP-07", H2_SERVERS)
)
def test_http2_response_headers_and_framing(fleet: Fleet, server_name: str) -> None:
    port = fleet.bridged[server_name].port
    cookies = h2_get(port, "/__headers?case=cookies")
    assert (cookies.status, cookies.body, cookies.reset) == (200, b"ok", False)
    assert [v for k, v in cookies.headers if k == b"set-cookie"] == [b"a=1", b"b=2"]
    assert (b"x-mixed-case", b"1") in cookies.headers
    hop = h2_get(port, "/__headers?case=hop")
    assert (hop.status, hop.body, hop.reset) == (200, b"ok", False)
    assert not {b"connection", b"keep-alive", b"transfer-encoding"} & {k for k, _ in hop.headers}
    stream = h2_get(port, "/__stream?n=3&size=10")
    assert (stream.status, stream.body, stream.reset) == (200, (b"x" * 9 + b"\n") * 3, False)


@pytest.mark.parametrize("server_name", each("tls", "W2A-ENV-17", list(TLS_SPECS)))
def test_https_scheme_over_real_tls(fleet: Fleet, server_name: str) -> None:
    with tls_connection(fleet.tls[server_name].port) as conn:
        conn.send(req("GET", "/x"))
        values = env_of(json.loads(conn.read_response().body))
    assert (values["wsgi.url_scheme"], values["HTTPS"]) == ("https", "on")
    assert values["SERVER_PORT"] == str(fleet.tls[server_name].port)
