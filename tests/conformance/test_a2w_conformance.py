"""ASGIToWSGI conformance through real WSGI servers, differential against native ASGI.

Every server of ``WSGI_SERVERS`` hosts ``ASGIToWSGI(probe_app)`` (``a2w_probe.py``);
uvicorn hosts the same ``probe_app`` natively. All of them start once for the module,
in parallel. Each scenario is sent over a raw socket (``live.rawclient``) to the bridged
server and, where the native server can serve it the same way, to uvicorn too: status,
headers, body and the echoed scope must match, except what ``NATURE`` lists as
differing between servers by nature.

Test ids carry the items of docs/checklist.md and the server:
``test_x[A2W-SCOPE-05][waitress]``.
A server's own bug or limitation is an ``xfail(strict=True)`` whose reason names it and
points at the ``/plain/...`` route of the probe that reproduces it without bridgeway.
"""

from __future__ import annotations

import hashlib
import json
import select
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import pytest

from tests.live.hosts import shared_directory
from tests.live.rawclient import RawConnection, request_bytes
from tests.live.servers import (
    ASGI_SERVERS,
    BIN,
    HOST,
    WSGI_HOSTS,
    WSGI_SERVERS,
    ServerProcess,
    ServerSpec,
    master_fifo,
    running_servers,
)
from tests.support.known_bugs import (
    CHEROOT_COOKIES,
    GRANIAN_ABORT,
    GRANIAN_ABORT_BEFORE_HEAD,
    GRANIAN_HTTP10,
    GRANIAN_LATIN1_IN,
    GRANIAN_LATIN1_OUT,
    MODWSGI_ABORT,
    NGINX_EMPTY_HOST,
    PASSENGER_100_CONTINUE,
    PASSENGER_CHUNKED_UPLOAD,
    PASSENGER_CLOSE_FRAMED,
    PASSENGER_EMPTY_LENGTH,
    PASSENGER_HTTP10,
    PASSENGER_PATH_INFO,
    PASSENGER_SERVER_PORT,
    UWSGI_CHUNKED_UPLOAD,
    UWSGI_CLOSE_FRAMED,
    UWSGI_CLOSE_FRAMED_NGINX,
    UWSGI_EXC_INFO,
    UWSGI_SOCKET_DUPLICATES,
    WAITRESS_204_CLOSE,
    WERKZEUG_RAW_BYTES,
    WSGIREF_204,
    WSGIREF_CHUNKED_UPLOAD,
    WSGIREF_CLOSE_FRAMED,
    KnownBug,
    marks_for,
)

pytestmark = pytest.mark.servers

PROBE = "tests.conformance.a2w_probe:probe"
NATIVE_APP = "tests.conformance.a2w_probe:probe_app"
NATIVE = "uvicorn-h11"
SERVERS_BY_NAME = {**WSGI_SERVERS, **WSGI_HOSTS}
SERVERS = list(SERVERS_BY_NAME)


def _waitress_lookahead(app: str, port: int) -> list[str]:
    # channel_request_lookahead > 0 makes waitress offer waitress.client_disconnected.
    return [
        f"{BIN}/waitress-serve",
        f"--listen={HOST}:{port}",
        "--channel-request-lookahead=5",
        app,
    ]


WAITRESS_LOOKAHEAD = ServerSpec("waitress-lookahead", "wsgi", _waitress_lookahead)

# --- what the servers do, observed (each entry is checked by some test) -------------------

# Servers that give the undecoded target (RAW_URI / REQUEST_URI), so raw_path is exact.
RAW_URI_SERVERS = {
    "gunicorn-sync",
    "gunicorn-gthread",
    "werkzeug",
    "uwsgi",
    "waitress",
    "mod_wsgi",
    "passenger",
    "nginx-uwsgi",
}
# Servers that keep a connection open after a response (HTTP/1.1 keep-alive).
KEEP_ALIVE = {
    "gunicorn-gthread",
    "waitress",
    "cheroot",
    "granian-wsgi",
    "mod_wsgi",
    "passenger",
    "nginx-uwsgi",
}
# Servers that hand the app the body as it arrives (not only once it is complete).
# (nginx reads the whole body before it passes the request on: uwsgi_request_buffering.)
STREAMING_INPUT = {
    "gunicorn-sync",
    "gunicorn-gthread",
    "werkzeug",
    "wsgiref",
    "cheroot",
    "uwsgi",
    "mod_wsgi",
}
# Servers that apply X-Forwarded-Proto from 127.0.0.1 to wsgi.url_scheme by default.
PROXY_SCHEME = {"gunicorn-sync", "gunicorn-gthread", "uwsgi", "nginx-uwsgi"}
# Servers whose streamed responses are framed by closing the connection, so an aborted
# response cannot be told from a complete one (no chunked encoding).
CLOSE_DELIMITED = {"wsgiref", "uwsgi", "passenger"}
# uWSGI, on its own or behind nginx: its UWSGI_EXC_INFO shows through both.
UWSGI_BASED = {"uwsgi", "nginx-uwsgi"}
# Servers whose graceful stop is SIGINT (their SIGTERM skips the interpreter's exit).
SIGINT_TO_STOP = {"waitress", "cheroot"}
# Servers that answer 400 to raw (unencoded) UTF-8 bytes in the request target.
RAW_BYTES_REFUSED = {
    name: 400 for name in ("gunicorn-sync", "gunicorn-gthread", "waitress", "cheroot", "passenger")
}
# Apache answers 404 to an encoded slash in the path (AllowEncodedSlashes Off, its default).
ENCODED_SLASH_REFUSED = {"mod_wsgi": 404}

# Differences between a bridged answer and uvicorn's native one that are in the nature of
# the servers, not bridgeway's doing. Listed once; ``comparable()`` applies them.
NATURE: dict[str, str] = {
    "scope.server": "SERVER_NAME/SERVER_PORT are the server's choice: the Host header, the"
    " bind address, the hostname (uWSGI), 'waitress.invalid', cheroot's version string;"
    " the port differs between server processes; nginx + uWSGI without server_name: an"
    " empty SERVER_NAME, so SERVER_ADDR (A2W-SCOPE-11)",
    "scope.client[1]": "the client port is a new ephemeral port per connection, and 0 where"
    " the server sets no REMOTE_PORT (wsgiref, granian, uWSGI; Passenger gives '0':"
    " A2W-SCOPE-10 fallback)",
    "scope.asgi.spec_version": "bridgeway claims 2.4 (send() raises OSError after a"
    " disconnect, A2W-SCOPE-01); uvicorn claims 2.3",
    "extensions": "each server advertises what it implements (A2W-SCOPE-13, EXT-06..08)",
    "state, pid, loop": "ids of per-process objects",
    "illegal_types": "uvicorn uses tuples for client, server and header pairs (servers may);"
    " bridgeway's scopes hold lists only (A2W-SCOPE-14), checked on the bridged side",
    "receive (chunking)": "uvicorn hands the body over in the pieces the socket gave it;"
    " bridgeway reads chunk_size pieces from wsgi.input: only the bytes are compared",
    "scope.raw_path": "servers without RAW_URI/REQUEST_URI (wsgiref, cheroot, granian):"
    " rebuilt from PATH_INFO, so %2F reads as / (A2W-SCOPE-06, documented)",
    "scope.headers (joining)": "WSGI has one value per header name: the server joins"
    " repeated lines (',' gunicorn, werkzeug, wsgiref, granian, Passenger; ', ' waitress,"
    " cheroot, uWSGI, mod_wsgi); uvicorn keeps them apart (A2W-SCOPE-09): values are"
    " compared split on ','",
    "scope.headers (order)": "the environ is a dict in the server's order: compared sorted",
    "scope.headers (x-forwarded-*)": "waitress drops X-Forwarded-* headers from untrusted"
    " peers (clear_untrusted_proxy_headers)",
    "scope.headers (content-type)": "wsgiref sets CONTENT_TYPE='text/plain' when the request"
    " has none",
    "scope.headers (chunked)": "waitress spools a chunked upload and presents it with"
    " CONTENT_LENGTH and no Transfer-Encoding; nginx reads it whole and passes"
    " CONTENT_LENGTH along with Transfer-Encoding",
    "scope.headers (cookie)": "granian joins repeated Cookie lines with ';': compared split"
    " on ';' and ','",
    "raw bytes in the target": "uvicorn (h11), gunicorn, waitress, cheroot and Passenger"
    " answer 400 to unencoded UTF-8 bytes in the request line (RFC 9112 allows it)",
    "encoded slash": "Apache (mod_wsgi) answers 404 to %2F in the path"
    " (AllowEncodedSlashes Off, its default)",
    "upgrade requests": "uvicorn turns 'Upgrade: websocket' into a websocket scope; a WSGI"
    " server cannot (EXT-09)",
    "scope.path (%2F)": "cheroot leaves %2F encoded in PATH_INFO (every other server"
    " decodes it); the scope follows PATH_INFO",
    "response: date, server, connection, keep-alive, transfer-encoding": "managed by the"
    " server that frames the message (HTTP-10, HTTP-08)",
    "response: status, x-powered-by": "Passenger adds both to every response (its WSGI"
    " loader writes a CGI-style Status line, which Passenger forwards)",
    "response: content-length": "bridgeway adds it when the whole body is one message"
    " (HTTP-08); uvicorn chunks such a response instead",
    "response: hop-by-hop headers": "uvicorn passes the app's connection/keep-alive/upgrade/"
    "te/trailer/proxy-* headers on; bridgeway drops them (A2W-SEND-02)",
    "response: errors after start": "uvicorn sends the head at http.response.start, so an"
    " error after it (or a start with no body) aborts the connection; bridgeway has not"
    " called start_response yet and answers 500 (A2W-SEND-04, A2W-SEND-06)",
    "response: content-length mismatch": "uvicorn drops the connection when the body is"
    " longer or shorter than content-length; bridgeway cuts the excess, and answers 500"
    " for a short body when nothing was sent yet (A2W-SEND-10)",
    "response: early hints": "uvicorn answers 500 to an early_hint it did not advertise;"
    " bridgeway ignores it with a debug log (EXT-08)",
}

# Server bugs and limitations, each reproduced without bridgeway by the probe's /plain/...
# and tied to the versions that have it: tests/support/known_bugs.py.


# --- fleet -------------------------------------------------------------------------------


@dataclass
class Fleet:
    servers: dict[str, ServerProcess]
    markers: Path
    native_cache: dict[tuple[bytes, str], Reply] = field(default_factory=dict)

    def port(self, name: str) -> int:
        return self.servers[name].port

    def native(self, data: bytes, method: str = "GET") -> Reply:
        key = (data, method)
        if key not in self.native_cache:
            self.native_cache[key] = fetch(self.port(NATIVE), data, method)
        return self.native_cache[key]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    # Not under pytest's tmp_path (0700): mod_wsgi's daemons write markers as www-data.
    with shared_directory("a2w-markers") as markers:
        launches = [(SERVERS_BY_NAME[name], PROBE) for name in SERVERS]
        launches += [(ASGI_SERVERS[NATIVE], NATIVE_APP), (WAITRESS_LOOKAHEAD, PROBE)]
        with running_servers(launches, env={"BRIDGEWAY_MARKERS": str(markers)}) as servers:
            yield Fleet({s.spec.name: s for s in servers}, markers)


def cases(
    items: str,
    servers: Sequence[str] = SERVERS,
    xfail: Mapping[str, KnownBug] | None = None,
) -> list[Any]:
    """One param per server, id ``ITEMS][server`` (so the test id reads
    ``test_x[ITEMS][server]``); ``xfail`` maps a server to its own bug, expected to fail
    only in the versions that have it."""
    xfail = xfail or {}
    return [
        pytest.param(name, id=f"{items}][{name}", marks=marks_for(xfail.get(name)))
        for name in servers
    ]


# --- client helpers ------------------------------------------------------------------------


@dataclass
class Reply:
    """A response read leniently: ``complete`` is False when the server aborted it."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    complete: bool

    def header(self, name: str) -> str | None:
        key = name.encode()
        return next((v.decode("latin-1") for k, v in self.headers if k == key), None)

    def all(self, name: str) -> list[bytes]:
        return [v for k, v in self.headers if k == name.encode()]

    def json(self) -> Any:
        assert self.complete, self
        return json.loads(self.body)


def read_reply(conn: RawConnection, method: str = "GET") -> Reply:
    try:
        head, parser = conn.read_head(method)
    except h11.RemoteProtocolError:
        return Reply(0, [], b"", False)
    try:
        conn.read_body(head, parser)
    except h11.RemoteProtocolError:
        return Reply(head.status, head.headers, head.body, False)
    return Reply(head.status, head.headers, head.body, head.complete)


def fetch(port: int, data: bytes, method: str = "GET", timeout: float = 10.0) -> Reply:
    with RawConnection(port, timeout=timeout) as conn:
        conn.send(data)
        return read_reply(conn, method)


def get(fleet: Fleet, server: str, target: str, method: str = "GET") -> Reply:
    return fetch(fleet.port(server), request_bytes(method, target), method)


def echo(fleet: Fleet, server: str, target: str = "/echo") -> Any:
    reply = get(fleet, server, target)
    assert reply.status == 200, reply
    return reply.json()


def unbytes(value: list[int]) -> bytes:
    return bytes(value)


def scope_headers(result: Any) -> list[tuple[bytes, bytes]]:
    return [(unbytes(k), unbytes(v)) for k, v in result["scope"]["headers"]]


def wait_for_file(path: Path, timeout: float) -> Any:
    """The JSON document of marker ``path`` once it exists (polled, bounded)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"no marker {path.name} after {timeout}s")
        time.sleep(0.02)  # polling interval, bounded by the deadline
    first, _, rest = path.read_text().partition("\n")
    return float(first), json.loads(rest)


_marker_ids = iter(range(1 << 30))


def marker_id(server: str) -> str:
    return f"{server}-{next(_marker_ids)}"


# --- differential comparison -------------------------------------------------------------


def comparable(result: Any, server: str, drop: frozenset[bytes] = frozenset()) -> dict[str, Any]:
    """The echo with ``NATURE``'s differences taken out (the native echo is passed with
    the bridged server's name: what that server cannot show is left out of both)."""
    scope = dict(result["scope"])
    scope.pop("server")
    client = scope.pop("client")
    scope["client_host"] = client[0] if client else None
    scope["asgi"] = {"version": scope["asgi"]["version"]}
    if server not in RAW_URI_SERVERS:
        scope.pop("raw_path")
    if server == "cheroot":
        scope["path"] = scope["path"].replace("%2F", "/")
        scope.pop("raw_path", None)
    joined: dict[bytes, list[bytes]] = {}
    for name, value in scope_headers(result):
        if server == "waitress" and name.startswith(b"x-forwarded-"):
            continue
        if name in drop:
            continue
        values = value.replace(b";", b",") if name == b"cookie" else value
        joined.setdefault(name, []).extend(v.strip() for v in values.split(b","))
    if server == "wsgiref" and joined.get(b"content-type") == [b"text/plain"]:
        del joined[b"content-type"]
    scope["headers"] = sorted(joined.items())
    keep = ("sha256", "length", "context_var", "mutated_before", "has_state")
    return {"scope": scope, **{k: result[k] for k in keep}}


_SERVER_MANAGED = {
    b"date",
    b"server",
    b"connection",
    b"keep-alive",
    b"transfer-encoding",
    b"status",  # Passenger's WSGI loader sends a CGI-style Status line, which it forwards
    b"x-powered-by",  # Passenger
}


def comparable_headers(reply: Reply, native: Reply) -> list[tuple[bytes, bytes]]:
    skip = set(_SERVER_MANAGED)
    if not native.all("content-length"):
        skip.add(b"content-length")
    return sorted((k, v) for k, v in reply.headers if k not in skip)


def assert_server_managed_once(reply: Reply) -> None:
    """HTTP-10: one date at most, one server at most, one content-length at most."""
    for name in ("date", "server", "content-length"):
        assert len(reply.all(name)) <= 1, (name, reply.headers)


# --- A2W-SCOPE / A2W-RECV through the echo, differential against uvicorn -----------------


@dataclass(frozen=True)
class EchoCase:
    items: str
    name: str
    data: bytes
    expect: Callable[[Any, str], None]
    xfail: Mapping[str, KnownBug] = field(default_factory=dict)
    refused_by: Mapping[str, int] = field(default_factory=dict)  # server: its own status
    native: bool = True  # uvicorn can serve it as the same HTTP request


def _scope(**expected: Any) -> Callable[[Any, str], None]:
    def check(result: Any, server: str) -> None:
        for key, value in expected.items():
            assert result["scope"][key] == value, (key, result["scope"][key])

    return check


def _expect_basics(result: Any, server: str) -> None:
    scope = result["scope"]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (scope["method"], scope["http_version"], scope["scheme"]) == ("GET", "1.1", "http")
    assert unbytes(scope["query_string"]) == b"x=1&y=%20+z&e="
    assert (scope["path"], scope["root_path"]) == ("/echo/a", "")
    assert unbytes(scope["raw_path"]) == b"/echo/a"
    assert result["illegal_types"] == []  # A2W-SCOPE-14: lists, not tuples
    assert result["mutated_before"] is False
    assert result["receive"] == [["http.request", 0, False]]  # A2W-RECV-04
    assert result["has_state"] is True
    assert result["context_var"] == "unset"  # A2W-LIFE-09


def _expect_headers(result: Any, server: str) -> None:
    headers = scope_headers(result)
    assert (b"x-foo", b"caf\xe9") in headers
    assert (b"x-empty", b"") in headers or server in ("cheroot", "granian-wsgi", "uwsgi")
    assert (b"content-type", b"a/b") in headers
    assert (b"content-length", b"3") in headers
    names = [k for k, _ in headers]
    assert len(names) == len(set(names)), names  # no header twice
    assert all(k == k.lower() and not k.startswith((b"wsgi", b"server", b"http_")) for k in names)


def _expect_duplicates(result: Any, server: str) -> None:
    headers = dict(scope_headers(result))
    assert headers[b"accept"] in (b"a/b,c/d", b"a/b, c/d")  # the server's join, not re-split
    cookies = [v for k, v in scope_headers(result) if k == b"cookie"]
    assert len(cookies) == 1


def _expect_body(size: int) -> Callable[[Any, str], None]:
    digest = hashlib.sha256(b"\x01" * size).hexdigest()

    def check(result: Any, server: str) -> None:
        assert (result["length"], result["sha256"]) == (size, digest)
        log = result["receive"]
        assert all(kind == "http.request" for kind, _, _ in log)
        assert all(n <= 65536 for _, n, _ in log)  # bounded reads (A2W-RECV-01)
        assert [more for _, _, more in log] == [True] * (len(log) - 1) + [False]

    return check


def _expect_upgrade(result: Any, server: str) -> None:
    headers = dict(scope_headers(result))
    assert result["scope"]["type"] == "http"
    assert headers[b"upgrade"] == b"websocket"
    assert b"sec-websocket-key" in headers


ECHO_CASES = [
    EchoCase(
        "A2W-SCOPE-01,A2W-SCOPE-07,A2W-SCOPE-14,A2W-RECV-04",
        "get",
        request_bytes("GET", "/echo/a?x=1&y=%20+z&e="),
        _expect_basics,
    ),
    EchoCase(
        "A2W-SCOPE-03",
        "propfind",
        request_bytes("PROPFIND", "/echo"),
        _scope(method="PROPFIND"),
    ),
    EchoCase(
        "A2W-SCOPE-03",
        "purge",
        request_bytes("PURGE", "/echo"),
        _scope(method="PURGE"),
    ),
    EchoCase(
        "A2W-SCOPE-05",
        "utf8-path",
        request_bytes("GET", "/caf%C3%A9/%E6%97%A5"),
        _scope(path="/café/日", raw_path=list(b"/caf%C3%A9/%E6%97%A5")),
        {"passenger": PASSENGER_PATH_INFO},
    ),
    EchoCase(
        "A2W-SCOPE-05",
        "invalid-utf8",
        request_bytes("GET", "/x%FF"),
        _scope(path="/x\ufffd"),
        {"passenger": PASSENGER_PATH_INFO},
    ),
    EchoCase(
        "A2W-SCOPE-05,A2W-SCOPE-07",
        "raw-utf8-bytes",
        b"GET /caf\xc3\xa9?q=\xc3\xa9 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        _scope(path="/café", query_string=list(b"q=\xc3\xa9")),
        {"werkzeug": WERKZEUG_RAW_BYTES},
        refused_by=RAW_BYTES_REFUSED,
        native=False,  # uvicorn's h11 refuses raw bytes in the target
    ),
    EchoCase(
        "A2W-SCOPE-06",
        "encoded-slash",
        request_bytes("GET", "/a%2Fb"),
        lambda r, s: (
            None
            if s == "cheroot"
            else _scope(path="/a/b", raw_path=list(b"/a%2Fb" if s in RAW_URI_SERVERS else b"/a/b"))(
                r, s
            )
        ),
        {"passenger": PASSENGER_PATH_INFO},
        refused_by=ENCODED_SLASH_REFUSED,
    ),
    EchoCase(
        "A2W-SCOPE-02",
        "http10",
        request_bytes("GET", "/echo", host="", version="1.0"),
        _scope(http_version="1.0"),
        {
            "granian-wsgi": GRANIAN_HTTP10,
            "passenger": PASSENGER_HTTP10,
            "nginx-uwsgi": NGINX_EMPTY_HOST,
        },
    ),
    EchoCase(
        "A2W-SCOPE-08",
        "headers",
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nX-Foo: caf\xe9\r\nX-Empty:\r\n"
        b"Content-Type: a/b\r\nContent-Length: 3\r\n\r\nabc",
        _expect_headers,
        {"granian-wsgi": GRANIAN_LATIN1_IN},
    ),
    EchoCase(
        "A2W-SCOPE-09",
        "duplicates",
        request_bytes(
            "GET",
            "/echo",
            [("Accept", "a/b"), ("Accept", "c/d"), ("Cookie", "a=1"), ("Cookie", "b=2")],
        ),
        _expect_duplicates,
        {"cheroot": CHEROOT_COOKIES, "nginx-uwsgi": UWSGI_SOCKET_DUPLICATES},
    ),
    EchoCase(
        "A2W-RECV-01,A2W-RECV-02",
        "upload-1mib",
        request_bytes("POST", "/echo", body=b"\x01" * (1 << 20)),
        _expect_body(1 << 20),
    ),
    EchoCase(
        "A2W-RECV-03",
        "chunked-upload",
        request_bytes("POST", "/echo", body=[b"\x01" * 70000, b"\x01" * 30000, b"\x01"]),
        _expect_body(100001),
        {
            "wsgiref": WSGIREF_CHUNKED_UPLOAD,
            "uwsgi": UWSGI_CHUNKED_UPLOAD,
            "passenger": PASSENGER_CHUNKED_UPLOAD,
        },
    ),
    EchoCase(
        "A2W-RECV-04",
        "post-empty",
        request_bytes("POST", "/echo", body=b""),
        lambda r, s: None if r["receive"] == [["http.request", 0, False]] else pytest.fail(r),
        {"passenger": PASSENGER_EMPTY_LENGTH},
    ),
    EchoCase(
        "EXT-09",
        "websocket-upgrade",
        request_bytes(
            "GET",
            "/ws",
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
            ],
        ),
        _expect_upgrade,
        native=False,  # uvicorn turns it into a websocket scope
    ),
]


@pytest.mark.parametrize(
    ("case", "server"),
    [
        pytest.param(case, *p.values, id=f"{p.id}-{case.name}", marks=p.marks)
        for case in ECHO_CASES
        for p in cases(case.items, xfail=case.xfail)
    ],
)
def test_echo_matches_native(fleet: Fleet, case: EchoCase, server: str) -> None:
    reply = fetch(fleet.port(server), case.data)
    if server in case.refused_by:
        # The server refuses the request itself (RFC 9112 allows it): nothing to bridge.
        assert reply.status == case.refused_by[server], reply
        return
    assert reply.status == (426 if case.name == "websocket-upgrade" else 200), reply
    result = reply.json()
    case.expect(result, server)
    if case.native:
        native = fleet.native(case.data)
        assert native.status == reply.status, native
        drop: frozenset[bytes] = frozenset()
        if server in ("waitress", "nginx-uwsgi") and case.name == "chunked-upload":
            drop = frozenset({b"content-length", b"transfer-encoding"})
        assert comparable(result, server, drop) == comparable(native.json(), server, drop)
    # The next request on the same server is served normally (EXT-09: worker healthy).
    assert echo(fleet, server)["scope"]["path"] == "/echo"


@pytest.mark.parametrize(
    "server", cases("A2W-SCOPE-05,A2W-SCOPE-06", xfail={"passenger": PASSENGER_PATH_INFO})
)
def test_mounted_root_path_is_in_path(fleet: Fleet, server: str) -> None:
    # The probe's WSGI shim mounts the adapter at /app (SCRIPT_NAME=/app), as a
    # DispatcherMiddleware would.
    scope = echo(fleet, server, "/app/caf%C3%A9?x=1")["scope"]
    assert (scope["root_path"], scope["path"]) == ("/app", "/app/café")
    raw = unbytes(scope["raw_path"])
    assert raw == b"/app/caf%C3%A9", raw
    scope = echo(fleet, server, "/app")["scope"]
    assert (scope["root_path"], scope["path"]) == ("/app", "/app")
    scope = echo(fleet, server, "/application/z")["scope"]
    assert (scope["root_path"], scope["path"]) == ("", "/application/z")


@pytest.mark.parametrize(
    "server", cases("A2W-SCOPE-02,A2W-SCOPE-04,A2W-SCOPE-10,A2W-SCOPE-11,A2W-RECV-04")
)
def test_environ_shapes_no_server_produces(fleet: Fleet, server: str) -> None:
    """The probe's environ shim edits what the real server built."""
    assert echo(fleet, server, "/shim/no-remote-port")["scope"]["client"] == ["127.0.0.1", 0]
    assert echo(fleet, server, "/shim/no-remote-addr")["scope"]["client"] is None
    assert echo(fleet, server, "/shim/no-server-name")["scope"]["server"] is None
    # An empty SERVER_NAME: SERVER_ADDR counts (the port is SERVER_PORT, checked below).
    assert echo(fleet, server, "/shim/empty-server-name")["scope"]["server"][0] == "127.0.0.1"
    assert echo(fleet, server, "/shim/unix-server")["scope"]["server"][1] is None
    assert echo(fleet, server, "/shim/http2")["scope"]["http_version"] == "2"
    assert echo(fleet, server, "/shim/odd-protocol")["scope"]["http_version"] == "1.1"
    assert echo(fleet, server, "/shim/no-scheme")["scope"]["scheme"] == "http"
    refused = fetch(fleet.port(server), request_bytes("POST", "/shim/bad-length", body=b"x"))
    assert refused.status == 400, refused  # A2W-RECV-04: invalid CONTENT_LENGTH
    assert "unknown SERVER_PROTOCOL 'HTTP/9'" in fleet.servers[server].log()


@pytest.mark.parametrize(
    "server", cases("A2W-SCOPE-10,A2W-SCOPE-11", xfail={"passenger": PASSENGER_SERVER_PORT})
)
def test_client_and_server_addresses(fleet: Fleet, server: str) -> None:
    port = fleet.port(server)
    with RawConnection(port) as conn:
        local_port = conn.sock.getsockname()[1]
        conn.send(request_bytes("GET", "/echo"))
        scope = read_reply(conn).json()["scope"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["client"][1] in (local_port, 0)  # 0: the server gives no REMOTE_PORT
    if server in ("gunicorn-sync", "gunicorn-gthread", "waitress", "werkzeug", "cheroot"):
        assert scope["client"][1] == local_port
    assert isinstance(scope["server"][0], str)
    assert scope["server"][1] == port
    if server == "nginx-uwsgi":
        # No server_name: SERVER_NAME is empty and SERVER_ADDR counts, the listening
        # address that uvicorn gives natively.
        assert scope["server"][0] == "127.0.0.1"
        native = fleet.native(request_bytes("GET", "/echo")).json()["scope"]["server"]
        assert native == ["127.0.0.1", fleet.port(NATIVE)]


@pytest.mark.parametrize("server", cases("A2W-SCOPE-04"))
def test_scheme_follows_the_servers_proxy_handling(fleet: Fleet, server: str) -> None:
    data = request_bytes("GET", "/echo", [("X-Forwarded-Proto", "https")])
    scheme = fetch(fleet.port(server), data).json()["scope"]["scheme"]
    assert scheme == ("https" if server in PROXY_SCHEME else "http")
    assert fleet.native(data).json()["scope"]["scheme"] == "https"  # uvicorn trusts 127.0.0.1


# --- lifespan, state, isolation ---------------------------------------------------------


@pytest.mark.parametrize(
    "server", cases("A2W-LIFE-01,A2W-LIFE-03,A2W-LIFE-09,A2W-SCOPE-12,A2W-SCOPE-13,EXT-07,EXT-08")
)
def test_lifespan_state_and_isolation(fleet: Fleet, server: str) -> None:
    results = [echo(fleet, server) for _ in range(6)]
    startups = {p.name for p in fleet.markers.glob("startup-*")}
    objects: dict[int, int] = {}
    for result in results:
        # Served on a loop whose lifespan startup had completed (A2W-LIFE-01) ...
        assert f"startup-{result['pid']}-{result['loop']}" in startups
        # ... with a copy of that loop's own state (A2W-LIFE-03, A2W-SCOPE-12).
        state = result["state"]
        assert state["loop"] == result["loop"]
        assert state["saw_x"] is False  # request 1 set state["x"]; request 2 never sees it
        assert objects.setdefault(result["loop"], state["obj"]) == state["obj"]  # same object
        assert result["context_var"] == "unset"  # A2W-LIFE-09
        assert result["mutated_before"] is False  # A2W-SCOPE-14: a new scope per request
        # Only what bridgeway implements is advertised; never what WSGI cannot carry.
        assert set(result["extensions"]) <= {"http.response.pathsend"}  # A2W-SCOPE-13, EXT-07
        assert not set(result["extensions"]) & {
            "http.response.early_hint",
            "http.response.trailers",
            "http.response.push",
            "http.response.debug",
            "http.response.zerocopysend",
            "websocket.http.response",
            "tls",
        }  # EXT-08


@pytest.mark.parametrize(
    "server", cases("A2W-LIFE-05,A2W-LIFE-06,A2W-LIFE-10,A2W-LIFE-11,A2W-LIFE-12")
)
def test_more_adapters_in_one_process(fleet: Fleet, server: str) -> None:
    """Other ASGIToWSGI instances the probe mounts at /x/NAME next to the main one."""
    log_before = len(fleet.servers[server].log())
    # A2W-LIFE-06: an app without lifespan support is served normally, without state.
    for _ in range(3):
        assert get(fleet, server, "/x/nolifespan/").json() == {"has_state": False}
    # A2W-LIFE-10: a second adapter has its own lifespan and state; the main one's
    # state does not see its keys.
    assert get(fleet, server, "/x/second/").json()["state"] == ["second"]
    assert echo(fleet, server)["has_state"] is True
    # A2W-LIFE-11: loop_factory makes the request's loop.
    assert get(fleet, server, "/x/uvloop/").json()["loop"] == "uvloop.Loop"
    # A2W-LIFE-05: startup.failed gives 500 and the handler never runs.
    for _ in range(3):
        assert get(fleet, server, "/x/failstart/").status == 500
    assert not list(fleet.markers.glob("handler-ran-*"))
    # A2W-LIFE-12: a startup that never completes is bounded by startup_timeout (0.5 s).
    started = time.monotonic()
    assert get(fleet, server, "/x/slowstart/").status == 500
    assert time.monotonic() - started < 3.0
    log = fleet.servers[server].log()[log_before:]
    assert "probe: db down" in log
    assert "Traceback" not in log  # lifespan refusals are not tracebacks per request


# --- A2W-SEND scenarios, differential ----------------------------------------------------


@dataclass(frozen=True)
class SendCase:
    items: str
    name: str
    method: str = "GET"
    status: int = 200
    body: bytes | None = None  # None: the response must be aborted (incomplete)
    same_as_native: bool = True  # else NATURE says why
    xfail: Mapping[str, KnownBug] = field(default_factory=dict)
    check: Callable[[Reply, str], None] | None = None


def _no_hop_by_hop(reply: Reply, server: str) -> None:
    for name in ("keep-alive", "upgrade", "te", "trailer", "proxy-authenticate"):
        assert not reply.all(name), (name, reply.headers)
    assert reply.all("connection") in ([], [b"close"], [b"keep-alive"])  # the server's own
    assert not reply.all("transfer-encoding")  # framed by the content-length
    assert reply.header("x-kept") == "yes"


def _latin1(reply: Reply, server: str) -> None:
    assert reply.all("content-disposition") == [b'attachment; filename="caf\xc3\xa9.txt"']
    assert reply.all("x-latin") == [b"\xe9\xff"]


def _length(value: str | None) -> Callable[[Reply, str], None]:
    def check(reply: Reply, server: str) -> None:
        assert reply.header("content-length") == value, reply.headers

    return check


def _streamed(reply: Reply, server: str) -> None:
    assert reply.header("content-length") is None  # left for the server to frame (HTTP-08)
    if server not in CLOSE_DELIMITED:
        assert reply.header("transfer-encoding") == "chunked"
    assert [json.loads(line)["i"] for line in reply.body.splitlines()] == [0, 1, 2]


_ABORTED = {
    "wsgiref": WSGIREF_CLOSE_FRAMED,
    "uwsgi": UWSGI_CLOSE_FRAMED,
    "granian-wsgi": GRANIAN_ABORT,
    "mod_wsgi": MODWSGI_ABORT,
    "passenger": PASSENGER_CLOSE_FRAMED,
    "nginx-uwsgi": UWSGI_CLOSE_FRAMED_NGINX,
}
_FIVE_HUNDRED = {name: UWSGI_EXC_INFO for name in sorted(UWSGI_BASED)}
_ERROR = b"Internal Server Error"

SEND_CASES = [
    SendCase("A2W-SEND-02", "hop", body=b"hop", same_as_native=False, check=_no_hop_by_hop),
    SendCase("A2W-SEND-01", "status299", status=299, body=b"odd"),
    SendCase(
        "A2W-SEND-01",
        "buffers",
        body=b"mvabc!",
    ),
    SendCase(
        "A2W-SEND-01",
        "latin1",
        body=b"ok",
        check=_latin1,
        xfail={"granian-wsgi": GRANIAN_LATIN1_OUT},
    ),
    SendCase("A2W-SEND-05", "raise-before", status=500, body=_ERROR, xfail=_FIVE_HUNDRED),
    SendCase(
        "A2W-SEND-04",
        "raise-after-start",
        status=500,
        body=_ERROR,
        same_as_native=False,
        xfail=_FIVE_HUNDRED,
    ),
    SendCase("A2W-SEND-05", "raise-mid", body=None, xfail=_ABORTED),
    SendCase("A2W-SEND-06", "no-response", status=500, body=_ERROR, xfail=_FIVE_HUNDRED),
    SendCase(
        "A2W-SEND-06",
        "start-only",
        status=500,
        body=_ERROR,
        same_as_native=False,
        xfail=_FIVE_HUNDRED,
    ),
    SendCase("A2W-SEND-06", "start-more-return", body=None, xfail=_ABORTED),
    SendCase("A2W-SEND-10", "cl-long", body=b"01234", same_as_native=False, check=_length("5")),
    SendCase(
        "A2W-SEND-10",
        "cl-short",
        status=500,
        body=_ERROR,
        same_as_native=False,
        xfail=_FIVE_HUNDRED,
    ),
    SendCase("HTTP-10", "cl-dup", body=b"ok", check=_length("2")),
    SendCase(
        "HTTP-10",
        "cl-conflict",
        status=500,
        body=_ERROR,
        same_as_native=False,
        xfail=_FIVE_HUNDRED,
    ),
    SendCase("A2W-SEND-12", "empty-chunks", body=b"x"),
    SendCase(
        "A2W-SEND-12,HTTP-08",
        "204",
        status=204,
        body=b"",
        xfail={"wsgiref": WSGIREF_204},
        check=_length(None),
    ),
    SendCase(
        "HTTP-08", "304", status=304, body=b"", xfail={"wsgiref": WSGIREF_204}, check=_length(None)
    ),
    SendCase("HTTP-04,HTTP-08", "head", "HEAD", body=b"", check=_length("100000")),
    SendCase("HTTP-08", "fixed", body=b"fixed body", check=_length("10")),
    SendCase("HTTP-08,A2W-SEND-07", "stream", body=b"", check=_streamed, same_as_native=False),
    SendCase("EXT-08", "trailers", body=b"body before trailers"),
    SendCase("EXT-08", "hints", body=b"after hints", same_as_native=False),
]


def _drops_head_on_abort(server: str) -> bool:
    return server == "granian-wsgi" and GRANIAN_ABORT_BEFORE_HEAD.applies()


@pytest.mark.parametrize(
    ("case", "server"),
    [
        pytest.param(case, *p.values, id=f"{p.id}-{case.name}", marks=p.marks)
        for case in SEND_CASES
        for p in cases(case.items, xfail=case.xfail)
    ],
)
def test_send_matches_native(fleet: Fleet, case: SendCase, server: str) -> None:
    data = request_bytes(case.method, f"/send/{case.name}")
    reply = fetch(fleet.port(server), data, case.method)
    dropped = case.body is None and reply.status == 0 and _drops_head_on_abort(server)
    if dropped:
        # The server's race (tests/support/known_bugs.py): nothing went out at all. Still never a
        # response that looks complete; the worker must not hang (below).
        assert not reply.complete, reply
    elif case.body is None:
        # Aborted: the head went out, the body did not end normally (A2W-SEND-05/06).
        assert reply.status == case.status, reply
        assert not reply.complete, reply
    else:
        assert (reply.status, reply.complete) == (case.status, True), reply
        if case.name != "stream":
            assert reply.body == case.body
    assert_server_managed_once(reply)
    if case.check is not None:
        case.check(reply, server)
    if case.same_as_native and not dropped:
        native = fleet.native(data, case.method)
        assert (native.status, native.body, native.complete) == (
            reply.status,
            reply.body,
            reply.complete,
        )
        assert comparable_headers(reply, native) == comparable_headers(native, native)
    # The worker is not hung: the next request is answered at once (A2W-SEND-06).
    started = time.monotonic()
    assert echo(fleet, server)["scope"]["path"] == "/echo"
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("server", cases("A2W-SEND-05"))
def test_errors_are_logged_with_traceback(fleet: Fleet, server: str) -> None:
    target = f"/send/raise-before?id={marker_id(server)}"
    reply = get(fleet, server, target)
    assert b"Traceback" not in reply.body
    log = fleet.servers[server].log()
    assert "RuntimeError: probe: raised before http.response.start" in log
    assert "Traceback (most recent call last)" in log


# --- the app's exception reaches the WSGI server (default propagate_exceptions=True) ---

PROPAGATING = ("gunicorn-gthread", "waitress", "werkzeug")
_RAISED = {
    # the exception's own line (its source line in the traceback has no "Error: ")
    "raise-before": ("Error: plain WSGI app raised before", "Error: probe: raised before"),
    "raise-mid": ("Error: plain WSGI generator raised mid", "Error: probe: raised mid-stream"),
    "raise-after-final": ("Error: plain WSGI generator raised after", "Error: probe: raised after"),
}


def _logged_once(fleet: Fleet, server: str, target: str, message: str) -> Reply:
    """GET ``target``; wait until ``message`` shows in the server's log, then check that
    it and one traceback were logged exactly once for it."""
    log = fleet.servers[server].log
    before, tracebacks = log().count(message), log().count("Traceback (most recent")
    reply = get(fleet, server, target)
    deadline = time.monotonic() + 5.0
    while log().count(message) == before:
        assert time.monotonic() < deadline, f"{message!r} not logged by {server}"
        time.sleep(0.02)  # polling interval, bounded by the deadline
    assert echo(fleet, server)["scope"]["path"] == "/echo"  # the failed request is over
    assert log().count(message) == before + 1, log()[-3000:]
    assert log().count("Traceback (most recent") == tracebacks + 1, log()[-3000:]
    return reply


@pytest.mark.parametrize("case", list(_RAISED))
@pytest.mark.parametrize("server", cases("A2W-SEND-05", PROPAGATING))
def test_exceptions_reach_the_server_as_a_native_wsgi_apps_do(
    fleet: Fleet, server: str, case: str
) -> None:
    """Differential, A2W-SEND-05: the same failure written as a plain WSGI app and as an
    ASGI app through ASGIToWSGI: the raw client gets the same status and the same
    abort (or complete body), the server logs one traceback for each."""
    plain_message, bridged_message = _RAISED[case]
    native = _logged_once(fleet, server, f"/plain/{case}", plain_message)
    bridged = _logged_once(fleet, server, f"/x/propagate/send/{case}", bridged_message)
    assert (bridged.status, bridged.complete) == (native.status, native.complete)
    if bridged.complete:
        assert bridged.body == native.body  # the server's own page in both cases
    # uvicorn serving the ASGI app natively gives the client the same status.
    assert fleet.native(request_bytes("GET", f"/send/{case}")).status == bridged.status


@pytest.mark.parametrize("server", cases("A2W-SEND-03"))
def test_invalid_messages_raise_in_the_app(fleet: Fleet, server: str) -> None:
    expected = {
        "body-before-start": "ProtocolError",
        "second-start": "ProtocolError",
        "unknown-type": "ValueError",
        "status-str": "ValueError",
        "status-99": "ValueError",
        "status-1000": "ValueError",
        "header-name-str": "TypeError",
        "header-value-str": "TypeError",
        "header-crlf": "ValueError",
        "header-nul": "ValueError",
        "pseudo-header": "ValueError",
        "body-str": "TypeError",
        "extra-keys": None,
    }
    seen = {}
    for case in expected:
        name = marker_id(server)
        reply = get(fleet, server, f"/send/invalid/{case}?id={name}")
        # Nothing malformed reaches the wire: a normal answer, or a 500 when the adapter
        # refuses everything after the protocol error.
        assert reply.status in (200, 500), (case, reply)
        assert reply.complete or server in UWSGI_BASED, (case, reply)  # UWSGI_EXC_INFO
        seen[case] = wait_for_file(fleet.markers / f"invalid-{name}", 5.0)[1]
    assert seen == expected


# --- streaming, background work, disconnects ---------------------------------------------


@pytest.mark.parametrize("server", cases("A2W-SEND-07"))
def test_each_chunk_reaches_the_client_at_once(fleet: Fleet, server: str) -> None:
    with RawConnection(fleet.port(server)) as conn:
        conn.send(request_bytes("GET", "/send/stream?n=3&gap=0.4"))
        head, parser = conn.read_head()
        arrivals: list[tuple[float, dict[str, Any]]] = []
        while len(arrivals) < 3:
            conn.read_body(head, parser, limit=len(head.body) + 1)
            while b"\n" in head.body:
                line, _, head.body = head.body.partition(b"\n")
                arrivals.append((time.time(), json.loads(line)))
    sent = [event["t"] for _, event in arrivals]
    assert sent[2] - sent[0] >= 0.75  # the app really paused between chunks
    for got, event in arrivals:
        assert got - event["t"] < 0.2, (got - event["t"], event)  # not held back


@pytest.mark.parametrize("server", cases("A2W-SEND-11"))
def test_work_after_the_final_body_does_not_delay_the_client(fleet: Fleet, server: str) -> None:
    name = marker_id(server)
    started = time.time()
    reply = get(fleet, server, f"/send/bg?id={name}")
    assert (reply.status, reply.body, reply.complete) == (200, b"queued", True)
    assert time.time() - started < 0.5
    assert echo(fleet, server)["scope"]["path"] == "/echo"  # a worker is free at once
    assert time.time() - started < 0.8
    done, _ = wait_for_file(fleet.markers / f"bg-{name}", 5.0)
    assert 1.4 <= done - started < 4.0  # it ran to completion, later


@pytest.mark.parametrize("server", cases("A2W-RECV-07,A2W-SEND-08,A2W-SEND-13"))
def test_sse_client_that_leaves_is_noticed(fleet: Fleet, server: str) -> None:
    name = marker_id(server)
    log_before = len(fleet.servers[server].log())
    conn = RawConnection(fleet.port(server), timeout=5.0)
    try:
        conn.send(request_bytes("GET", f"/send/sse?id={name}"))
        head, parser = conn.read_head()
        assert head.status == 200
        conn.read_body(head, parser, limit=80)
        assert b"data: tick 0\n\n" in head.body
    finally:
        left = time.time()
        conn.close()
    when, how = wait_for_file(fleet.markers / f"sse-{name}", 5.0)
    assert how in ("receive", "oserror:ClientDisconnected"), how
    assert when - left < 1.0
    assert "Traceback" not in fleet.servers[server].log()[log_before:]  # nothing logged
    assert echo(fleet, server)["scope"]["path"] == "/echo"


@pytest.mark.parametrize("server", cases("A2W-SEND-09"))
def test_message_after_the_final_body_raises(fleet: Fleet, server: str) -> None:
    name = marker_id(server)
    reply = get(fleet, server, f"/send/after-complete?id={name}")
    assert (reply.status, reply.body, reply.complete) == (200, b"complete", True)
    _, raised = wait_for_file(fleet.markers / f"after-complete-{name}", 5.0)
    assert raised == "ProtocolError"  # a RuntimeError subclass, as uvicorn raises


@pytest.mark.parametrize("server", cases("A2W-RECV-06"))
def test_receive_after_the_body_waits_for_the_response(fleet: Fleet, server: str) -> None:
    name = marker_id(server)
    data = request_bytes("POST", f"/recv/after-body?id={name}", body=b"0123456789")
    started = time.monotonic()
    reply = fetch(fleet.port(server), data)
    assert reply.json() == {"early": None, "length": 10}  # no early http.disconnect
    assert time.monotonic() - started < 2.0  # and no hang: never read past the body
    _, (after, again, waited) = wait_for_file(fleet.markers / f"after-body-{name}", 5.0)
    assert (after, again) == ("http.disconnect", "http.disconnect")
    assert waited < 0.05


@pytest.mark.parametrize("server", cases("A2W-RECV-09"))
def test_receive_from_two_tasks(fleet: Fleet, server: str) -> None:
    body = bytes(range(256)) * 4096
    reply = fetch(fleet.port(server), request_bytes("POST", "/recv/two-tasks", body=body))
    assert reply.json() == {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}


def _expect_100(conn: RawConnection, wait: float) -> bool:
    """Whether the server sent something (a 100 Continue) within ``wait`` seconds."""
    readable, _, _ = select.select([conn.sock], [], [], wait)
    return bool(readable)


@pytest.mark.parametrize(
    "server", cases("A2W-RECV-10,HTTP-02", xfail={"passenger": PASSENGER_100_CONTINUE})
)
def test_expect_continue(fleet: Fleet, server: str) -> None:
    # An app that refuses without reading: answered at once, the upload never sent.
    # (waitress reads the whole body before it calls the app, so it cannot show this.)
    if server in STREAMING_INPUT | {"granian-wsgi"}:
        with RawConnection(fleet.port(server), timeout=5.0) as conn:
            head = [("Expect", "100-continue"), ("Content-Length", str(1 << 30))]
            conn.send(request_bytes("POST", "/recv/no-read", head))
            started = time.monotonic()
            reply = read_reply(conn)
            assert reply.status == 413, reply
            assert time.monotonic() - started < 2.0
    # An app that reads: gets the body, whenever the server sent its 100.
    body = b"\x01" * 5000
    with RawConnection(fleet.port(server), timeout=5.0) as conn:
        head = [("Expect", "100-continue"), ("Content-Length", str(len(body)))]
        conn.send(request_bytes("POST", "/echo", head))
        _expect_100(conn, 0.5)
        conn.send(body)
        result = read_reply(conn).json()
    assert (result["length"], result["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert (b"expect", b"100-continue") in scope_headers(result)


@pytest.mark.parametrize("server", cases("A2W-RECV-05", servers=sorted(STREAMING_INPUT)))
def test_client_leaving_mid_upload_is_a_disconnect(fleet: Fleet, server: str) -> None:
    name = marker_id(server)
    with RawConnection(fleet.port(server), timeout=5.0) as conn:
        conn.send(request_bytes("POST", f"/recv/record?id={name}", [("Content-Length", "1000")]))
        conn.send(b"x" * 10)
        time.sleep(0.1)  # let the first piece arrive on its own (not a synchronisation)
    _, log = wait_for_file(fleet.markers / f"record-{name}", 5.0)
    assert log[-1][0] == "http.disconnect", log
    assert ["http.request", 10, False] not in log  # never a truncated body as complete
    assert sum(n for kind, n, _ in log if kind == "http.request") <= 10


@pytest.mark.parametrize("server", cases("A2W-RECV-08", servers=sorted(STREAMING_INPUT)))
def test_a_slow_upload_does_not_freeze_the_loop(fleet: Fleet, server: str) -> None:
    # bridgeway holds the response until the helper thread's read in flight returns
    # (bounded): the server must not touch the connection while it reads.
    with RawConnection(fleet.port(server), timeout=10.0) as conn:
        conn.send(request_bytes("POST", "/recv/slow", [("Content-Length", "10")]) + b"x")
        if not _expect_100(conn, 1.0):
            # The response waits for the helper thread's read in flight (bounded), and
            # cheroot answers only once it has the whole body: let the read finish.
            conn.send(b"y" * 9)
        result = read_reply(conn).json()
    assert result["got"] == "timeout", result  # wait_for(receive(), 0.5) timed out ...
    assert 0.45 <= result["after"] < 1.5  # ... on time, while wsgi.input was blocked


@pytest.mark.parametrize("server", cases("A2W-RECV-11", servers=["waitress-lookahead"]))
def test_waitress_disconnect_probe_reaches_a_silent_app(fleet: Fleet, server: str) -> None:
    name = marker_id(server)
    conn = RawConnection(fleet.port(server), timeout=5.0)
    conn.send(request_bytes("GET", f"/recv/longpoll?id={name}"))
    time.sleep(0.2)  # the app is waiting in receive() (not a synchronisation)
    left = time.time()
    conn.close()
    when, kind = wait_for_file(fleet.markers / f"longpoll-{name}", 5.0)
    assert kind == "http.disconnect"
    assert when - left < 1.5  # within the poll interval (0.5 s) and waitress's own tick


# --- framing, keep-alive, pipelining -----------------------------------------------------


@pytest.mark.parametrize("server", cases("HTTP-04,HTTP-05"))
def test_head_leaves_no_body_bytes_on_the_connection(fleet: Fleet, server: str) -> None:
    with RawConnection(fleet.port(server), timeout=5.0) as conn:
        conn.send(request_bytes("HEAD", "/send/head") + request_bytes("GET", "/send/fixed"))
        head = read_reply(conn, "HEAD")
        assert (head.status, head.body, head.complete) == (200, b"", True)
        assert head.header("content-length") == "100000"
        if server in KEEP_ALIVE:
            follow = read_reply(conn)
            assert (follow.status, follow.body) == (200, b"fixed body")
        else:
            assert conn.read_until_close(deadline=5.0) == b""  # closed, no stray bytes


@pytest.mark.parametrize(
    "server",
    cases(
        "HTTP-05",
        servers=sorted(KEEP_ALIVE),
        xfail={"waitress": WAITRESS_204_CLOSE, "passenger": PASSENGER_CLOSE_FRAMED},
    ),
)
def test_keep_alive_survives_every_kind_of_response(fleet: Fleet, server: str) -> None:
    sequence = [
        ("GET", "/send/fixed", b""),
        ("GET", "/send/stream?n=3", b""),
        ("GET", "/send/204", b""),
        ("GET", "/send/304", b""),
        ("HEAD", "/send/head", b""),
        ("GET", "/send/empty-chunks", b""),
        ("GET", "/echo", b""),
        ("POST", "/recv/no-read", b"u" * 1000),  # a body the app never reads
    ]
    with RawConnection(fleet.port(server), timeout=5.0) as conn:
        for method, target, body in sequence:
            conn.send(request_bytes(method, target, body=body or None))
            reply = read_reply(conn, method)
            assert reply.complete, (target, reply)
            if target == "/echo":
                assert reply.json()["scope"]["path"] == "/echo"
            if target != "/recv/no-read":  # the server may drain or close (A2W-RECV-10)
                assert reply.header("connection") != "close", (target, reply.headers)


@pytest.mark.parametrize("server", cases("HTTP-09", servers=sorted(KEEP_ALIVE)))
def test_pipelined_requests(fleet: Fleet, server: str) -> None:
    body = b"p" * 3000
    with RawConnection(fleet.port(server), timeout=5.0) as conn:
        conn.send(
            request_bytes("GET", "/echo/1")
            + request_bytes("POST", "/echo/2", body=body)
            + request_bytes("GET", "/echo/3")
        )
        results = [read_reply(conn).json() for _ in range(3)]
    assert [r["scope"]["path"] for r in results] == ["/echo/1", "/echo/2", "/echo/3"]
    assert [r["length"] for r in results] == [0, 3000, 0]


@pytest.mark.parametrize(
    "server",
    cases(
        "A2W-SEND-05,A2W-SEND-10,HTTP-05",
        xfail={
            "granian-wsgi": GRANIAN_ABORT,
            "mod_wsgi": MODWSGI_ABORT,
            "nginx-uwsgi": UWSGI_CLOSE_FRAMED_NGINX,
        },
    ),
)
def test_an_aborted_response_is_never_reused(fleet: Fleet, server: str) -> None:
    # After a cut-off at Content-Length the connection is still sound (keep-alive
    # servers) and after an aborted stream it is closed, never reused half-written.
    with RawConnection(fleet.port(server), timeout=5.0) as conn:
        conn.send(request_bytes("GET", "/send/cl-long") + request_bytes("GET", "/echo"))
        first = read_reply(conn)
        assert (first.status, first.body) == (200, b"01234")
        if server in KEEP_ALIVE:
            assert read_reply(conn).json()["scope"]["path"] == "/echo"
    with RawConnection(fleet.port(server), timeout=5.0) as conn:
        conn.send(request_bytes("GET", "/send/raise-mid") + request_bytes("GET", "/echo"))
        aborted = read_reply(conn)
        if server not in CLOSE_DELIMITED:
            assert not aborted.complete  # GRANIAN_ABORT
        assert conn.read_until_close(deadline=5.0) == b""  # nothing more on this socket


# --- extensions --------------------------------------------------------------------------


PATHSEND_FILE = Path(__file__).resolve().parent / "a2w_probe.py"  # what the probe sends


@pytest.mark.parametrize("server", cases("EXT-06,HTTP-05"))
def test_pathsend_is_advertised_and_bridged(fleet: Fleet, server: str) -> None:
    """EXT-06: ``http.response.pathsend`` is advertised and the file arrives byte for
    byte (through ``wsgi.file_wrapper`` where the server has one)."""
    assert "http.response.pathsend" in echo(fleet, server)["extensions"]
    expected = PATHSEND_FILE.read_bytes()
    with RawConnection(fleet.port(server), timeout=5.0) as conn:
        conn.send(request_bytes("GET", "/send/pathsend") + request_bytes("GET", "/echo"))
        reply = read_reply(conn)
        assert (reply.status, reply.complete) == (200, True), reply
        assert reply.body == expected
        assert reply.header("content-length") == str(len(expected))
        assert reply.header("content-type") == "text/x-python"
        if server in KEEP_ALIVE:  # the connection is still sound
            assert read_reply(conn).json()["scope"]["path"] == "/echo"
    head = get(fleet, server, "/send/pathsend", "HEAD")
    assert (head.status, head.body, head.complete) == (200, b"", True)
    # A path that cannot be opened, before anything was sent: a 500.
    missing = get(fleet, server, "/send/pathsend-missing")
    assert missing.status == 500 or (server in UWSGI_BASED and not missing.complete), missing
    if server not in UWSGI_BASED:  # UWSGI_EXC_INFO
        assert missing.complete
    # A body after pathsend raises in the app; the file still arrives whole.
    name = marker_id(server)
    mixed = get(fleet, server, f"/send/pathsend-mixed?id={name}")
    assert (mixed.status, mixed.body) == (200, expected)
    _, raised = wait_for_file(fleet.markers / f"pathsend-{name}", 5.0)
    assert raised is True  # isinstance(exc, RuntimeError)


# --- big bodies through the hosts (proxies that buffer: Apache, Passenger, nginx) ---------


@pytest.mark.parametrize("server", cases("A2W-RECV-01,A2W-SEND-07", servers=list(WSGI_HOSTS)))
def test_big_bodies_both_ways(fleet: Fleet, server: str) -> None:
    """A 10 MiB upload arrives whole in bounded reads; a 50 MiB stream arrives whole, as
    uvicorn serves it natively. (The other servers pass no proxy: 1 MiB shows them.)"""
    body = bytes(range(251)) * (10 * 4096 + 1)  # 10 MiB and a little, not a round size
    result = fetch(fleet.port(server), request_bytes("POST", "/echo", body=body)).json()
    assert (result["length"], result["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert all(n <= 65536 for _, n, _ in result["receive"])  # A2W-RECV-01
    data = request_bytes("GET", "/send/big?mib=50")
    reply = fetch(fleet.port(server), data, timeout=20.0)
    native = fleet.native(data)
    assert (reply.status, reply.complete, len(reply.body)) == (200, True, 50 << 20)
    assert hashlib.sha256(reply.body).digest() == hashlib.sha256(native.body).digest()
    assert reply.header("content-length") is None  # streamed, not buffered into one


# --- the hosts' own bugs, shown by a plain WSGI app (no bridgeway) ----------------------


def _plain_env(reply: Reply) -> dict[str, str]:
    assert (reply.status, reply.complete) == (200, True), reply
    env: dict[str, str] = reply.json()
    return env


@dataclass(frozen=True)
class HostBug:
    """What PEP 3333 / HTTP expect of the host for a plain WSGI request: the test asserts
    it, and is a strict xfail while the host's version has ``bug``."""

    server: str
    name: str
    bug: KnownBug
    data: Callable[[int], bytes]
    expect: Callable[[Reply, int], bool]


_CHUNKED = request_bytes("POST", "/plain/environ", body=[b"abc", b"def"])
HOST_BUGS = [
    HostBug(
        "mod_wsgi",
        "abort",
        MODWSGI_ABORT,
        lambda port: request_bytes("GET", "/plain/raise-mid"),
        lambda reply, port: not reply.complete,
    ),
    HostBug(
        "passenger",
        "path-info",
        PASSENGER_PATH_INFO,
        lambda port: request_bytes("GET", "/plain/environ/caf%C3%A9"),
        lambda reply, port: _plain_env(reply)["PATH_INFO"] == "/plain/environ/caf\xc3\xa9",
    ),
    HostBug(
        "passenger",
        "http10",
        PASSENGER_HTTP10,
        lambda port: request_bytes("GET", "/plain/environ", host="", version="1.0"),
        lambda reply, port: _plain_env(reply)["SERVER_PROTOCOL"] == "HTTP/1.0",
    ),
    HostBug(
        "passenger",
        "server-port",
        PASSENGER_SERVER_PORT,
        lambda port: request_bytes("GET", "/plain/environ"),
        lambda reply, port: _plain_env(reply)["SERVER_PORT"] == str(port),
    ),
    HostBug(
        "passenger",
        "chunked-upload",
        PASSENGER_CHUNKED_UPLOAD,
        lambda port: _CHUNKED,
        lambda reply, port: _plain_env(reply).get("CONTENT_LENGTH") == "6",
    ),
    HostBug(
        "passenger",
        "empty-length",
        PASSENGER_EMPTY_LENGTH,
        lambda port: request_bytes("POST", "/plain/environ", body=b""),
        lambda reply, port: _plain_env(reply).get("CONTENT_LENGTH") == "0",
    ),
    HostBug(
        "passenger",
        "close-framed",
        PASSENGER_CLOSE_FRAMED,
        lambda port: request_bytes("GET", "/plain/raise-mid"),
        lambda reply, port: not reply.complete,
    ),
    HostBug(
        "passenger",
        "100-continue",
        PASSENGER_100_CONTINUE,
        lambda port: request_bytes(
            "POST", "/plain/environ", [("Expect", "100-continue")], body=b"abc"
        ),
        lambda reply, port: reply.status == 200 and reply.complete,
    ),
    HostBug(
        "nginx-uwsgi",
        "empty-host",
        NGINX_EMPTY_HOST,
        lambda port: request_bytes("GET", "/plain/environ", host="", version="1.0"),
        lambda reply, port: "HTTP_HOST" not in _plain_env(reply),
    ),
    HostBug(
        "nginx-uwsgi",
        "duplicates",
        UWSGI_SOCKET_DUPLICATES,
        lambda port: request_bytes("GET", "/plain/environ", [("Accept", "a/b"), ("Accept", "c/d")]),
        lambda reply, port: _plain_env(reply)["HTTP_ACCEPT"] in ("a/b,c/d", "a/b, c/d"),
    ),
    HostBug(
        "nginx-uwsgi",
        "close-framed",
        UWSGI_CLOSE_FRAMED_NGINX,
        lambda port: request_bytes("GET", "/plain/raise-mid"),
        lambda reply, port: not reply.complete,
    ),
]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, id=f"no bridgeway][{case.server}-{case.name}", marks=case.bug.marks())
        for case in HOST_BUGS
    ],
)
def test_plain_wsgi_on_the_host(fleet: Fleet, case: HostBug) -> None:
    """The reproduction of each host bug recorded above, with the probe's plain WSGI
    routes: the host's own behaviour, whatever bridgeway does."""
    port = fleet.port(case.server)
    reply = fetch(port, case.data(port), timeout=5.0)
    assert case.expect(reply, port), reply


# --- shutdown (last: stops the servers) ---------------------------------------------------


@pytest.mark.parametrize("server", cases("A2W-LIFE-07"))
def test_lifespan_shutdown_for_every_loop_when_the_server_stops(fleet: Fleet, server: str) -> None:
    pids = {echo(fleet, server)["pid"] for _ in range(3)}
    # For the failure message: tasks left on the loops, and the main adapter's loops.
    pending = [get(fleet, server, "/tasks").json() for _ in range(3)]
    pending.append(get(fleet, server, "/pool").json())
    process = fleet.servers[server]
    if server in SIGINT_TO_STOP:
        # Their graceful stop is Ctrl-C; SIGTERM ends them without running exit hooks.
        assert process.proc is not None
        process.proc.send_signal(signal.SIGINT)
        process.proc.wait(10.0)
    elif server == "uwsgi":
        # uWSGI 2.0's SIGTERM (--die-on-term) kills the workers at once, and a worker
        # whose thread is still finishing the last request (under load, just after the
        # client got its response) skips the interpreter's exit altogether (its python
        # plugin's atexit returns while the worker is busy). Its graceful stop is "q" on
        # the master FIFO: the requests finish, then the workers exit normally.
        assert process.proc is not None
        master_fifo(process.port).write_bytes(b"q")
        process.proc.wait(10.0)
    stopping = time.monotonic()
    process.stop()
    stopped_after = time.monotonic() - stopping

    def loops(kind: str) -> set[str]:
        found = set()
        for path in fleet.markers.glob(f"{kind}-*"):
            _, pid, loop = path.name.split("-")
            if int(pid) in pids:
                found.add(f"{pid}-{loop}")
        return found

    started = loops("startup")
    assert started
    deadline = time.monotonic() + 5.0
    while loops("shutdown") != started and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval, bounded by the deadline
    assert loops("shutdown") == started, (
        f"stopped after {stopped_after:.1f}s; pending tasks {pending}; log tail:\n"
        f"{process.log()[-3000:]}"
    )
