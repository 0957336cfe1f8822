"""WSGIToASGI under real ASGI servers, over real sockets (issue 2, points 5 and 9).

Each server is a subprocess on a free loopback port (``tests/live/servers.py``); the
apps are in ``tests/live/apps.py``. Requests go through the raw-socket client so the
tests control exactly what is sent and when the connection goes away.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import h11
import pytest

from tests.live.rawclient import RawConnection, exchange, request_bytes
from tests.live.servers import (
    ASGI_SERVERS,
    SERVERS,
    ServerProcess,
    running_server,
    running_servers,
)
from tests.support.fleet import running_fleet

pytestmark = pytest.mark.servers

PROBE = "tests.live.apps:w2a_probe"
PROBE_ONE_THREAD = "tests.live.apps:w2a_probe_1"
FLASK = "tests.live.apps:w2a_flask"


def get_json(server: ServerProcess, target: str, timeout: float = 5.0) -> Any:
    response = exchange(server.port, request_bytes("GET", target), timeout=timeout)
    assert response.status == 200, response
    return json.loads(response.body)


def wait_for_stats(server: ServerProcess, timeout: float = 5.0) -> dict[str, int]:
    """Poll /stats until every stream that started was closed (or the deadline passes)."""
    deadline = time.monotonic() + timeout
    while True:
        stats: dict[str, int] = get_json(server, "/stats")
        if stats["streams_closed"] == stats["streams_started"] or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)  # polling interval, bounded by the deadline


# --- point 5: a client leaving mid-stream frees the only worker thread ---------------

FAST = "/stream?size=16384"  # held back by backpressure when the client leaves
SLOW = "/stream?size=512&delay=0.02"  # never fills the socket: only http.disconnect tells
MIB = 1 << 20

# (server, target, bytes to read before leaving, close with RST instead of FIN, method)
DISCONNECTS = [
    pytest.param("uvicorn-h11", FAST, MIB, False, "GET", id="h11-backpressured"),
    pytest.param("uvicorn-httptools", FAST, MIB, True, "GET", id="httptools-rst"),
    pytest.param("uvicorn-h11", SLOW, 4096, False, "GET", id="h11-slow"),
    pytest.param("uvicorn-httptools", SLOW, 4096, False, "GET", id="httptools-slow"),
    # The app reads its (empty) request body first: the disconnect watcher starts then.
    pytest.param("uvicorn-h11", FAST + "&drain=1", MIB, False, "GET", id="h11-drained"),
    pytest.param("uvicorn-h11", SLOW + "&drain=1", 4096, True, "GET", id="h11-slow-drained"),
    # A request body the app never reads: the adapter must still notice the client leave.
    pytest.param("uvicorn-h11", FAST, MIB, False, "POST", id="h11-unread-body"),
    pytest.param("uvicorn-httptools", SLOW, 4096, False, "POST", id="httptools-slow-unread-body"),
]


def leave_mid_stream_then_ask_again(
    server: ServerProcess, target: str, read_bytes: int, *, reset: bool, method: str = "GET"
) -> None:
    """Read part of an endless stream, leave, and check the (only) worker is free again."""
    conn = RawConnection(server.port, timeout=5.0)
    try:
        body = b"unread=1" if method == "POST" else None
        conn.send(request_bytes(method, target, body=body))
        head, parser = conn.read_head()
        assert head.status == 200
        conn.read_body(head, parser, limit=read_bytes)
        assert len(head.body) >= read_bytes
        assert not head.complete  # endless: the client leaves in the middle
    finally:
        conn.close(reset=reset)

    # max_threads=1: this request can only run once the endless one let go of it.
    started = time.monotonic()
    try:
        echo = get_json(server, "/after?x=1", timeout=5.0)
    except TimeoutError:
        pytest.fail("the single worker thread was still busy 5 s after the client left")
    assert echo["PATH_INFO"] == "/after"
    assert time.monotonic() - started < 3.0

    stats = wait_for_stats(server)
    assert stats["streams_started"] == 1
    assert stats["streams_closed"] == 1, f"close() was not called: {stats}"


@pytest.mark.parametrize(("server_name", "target", "read_bytes", "reset", "method"), DISCONNECTS)
def test_disconnect_mid_stream_frees_the_single_worker(
    server_name: str, target: str, read_bytes: int, reset: bool, method: str
) -> None:
    # A short stop timeout: if the endless stream never stops, uvicorn waits for it.
    with running_server(server_name, PROBE_ONE_THREAD, stop_timeout=3.0) as server:
        leave_mid_stream_then_ask_again(server, target, read_bytes, reset=reset, method=method)


OTHER_ASGI = [name for name in ASGI_SERVERS if not name.startswith("uvicorn-")]


@pytest.fixture(scope="module")
def single_thread_fleet() -> Iterator[dict[str, ServerProcess]]:
    """The other ASGI servers hosting WSGIToASGI(wsgi_probe, max_threads=1), in parallel;
    each is used by one test only, so a stuck worker cannot leak into another test."""
    launches = [(ASGI_SERVERS[name], PROBE_ONE_THREAD) for name in OTHER_ASGI]
    with running_fleet(launches, stop_timeout=3.0) as fleet:
        yield fleet


@pytest.mark.parametrize("server_name", OTHER_ASGI)
def test_disconnect_frees_the_single_worker_on_other_servers(
    single_thread_fleet: dict[str, ServerProcess], server_name: str
) -> None:
    leave_mid_stream_then_ask_again(single_thread_fleet[server_name], FAST, MIB, reset=False)


# --- point 9: Flask through WSGIToASGI under hypercorn's trio worker ------------------


def test_flask_under_hypercorn_trio() -> None:
    with running_server("hypercorn-trio", FLASK) as server:
        with urllib.request.urlopen(server.url("/"), timeout=5) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/html")
            assert response.read() == b'<a href="/hello/world">hello</a>'

        with urllib.request.urlopen(server.url("/hello/trio"), timeout=5) as response:
            assert json.loads(response.read()) == {"hello": "trio", "script_root": ""}

        form = urllib.parse.urlencode({"name": "Zoë", "n": "3"}).encode()
        with urllib.request.urlopen(server.url("/echo"), data=form, timeout=5) as response:
            assert response.status == 200
            echoed = json.loads(response.read())
        assert echoed["form"] == {"name": "Zoë", "n": "3"}
        assert echoed["length"] == len(form)

        body = bytes(range(256)) * 4096  # 1 MiB of binary, several ASGI messages
        request = urllib.request.Request(
            server.url("/echo"),
            data=body,
            headers={"Content-Type": "application/octet-stream"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            echoed = json.loads(response.read())
        assert echoed == {
            "form": {},
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }


# --- close_after_send, both settings, under real servers ------------------------------

FLASK_NOWAIT = "tests.live.apps:w2a_flask_nowait"  # the default, spelt out
FLASK_STRICT = "tests.live.apps:w2a_flask_strict"  # close_after_send=True


@pytest.mark.parametrize("app", [FLASK_NOWAIT, FLASK_STRICT], ids=["fast-close", "strict"])
@pytest.mark.parametrize("server_name", ["uvicorn-httptools", "hypercorn-trio"])
def test_close_after_send_keeps_responses_whole_and_closes_each_once(
    server_name: str, app: str
) -> None:
    """With or without the wait before close(), keep-alive responses stay whole and in
    order, and every response is still closed exactly once."""
    with running_server(server_name, app) as server:
        with RawConnection(server.port, timeout=5.0) as conn:

            def closed_hellos() -> int:
                conn.send(request_bytes("GET", "/closes"))
                return int(json.loads(conn.read_response().body)["hello"])

            assert closed_hellos() == 0
            for i in range(50):
                conn.send(request_bytes("GET", f"/hello/n{i}"))
                response = conn.read_response()
                assert response.status == 200
                assert json.loads(response.body) == {"hello": f"n{i}", "script_root": ""}
            # A close() may still be running when its response has arrived (in either
            # mode), so poll, with a deadline.
            deadline = time.monotonic() + 5.0
            while True:
                counted = closed_hellos()
                if counted >= 50 or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        assert counted == 50


CLOSE_ORDER = {
    "fast-close": "tests.live.apps:w2a_close_order",  # the default
    "strict": "tests.live.apps:w2a_close_order_strict",  # close_after_send=True
}


@pytest.mark.parametrize("mode", list(CLOSE_ORDER))
@pytest.mark.parametrize("server_name", ["uvicorn-httptools", "hypercorn-trio"])
def test_close_order_per_request(server_name: str, mode: str) -> None:
    """W2A-RESP-13 both ways, request by request on one keep-alive connection: the
    default does not wait for the last send() (the server holds that send() until
    close() has returned, and it still completes); close_after_send=True does (close()
    sees it returned). Either way close() runs once, in the thread that ran the app,
    and the ASGI call returns only after close() returned."""
    ids = [f"{mode}-{i}" for i in range(10)]
    with running_server(server_name, CLOSE_ORDER[mode]) as server:
        with RawConnection(server.port, timeout=10.0) as conn:
            for request_id in ids:
                conn.send(request_bytes("GET", "/hello", [("X-Request-Id", request_id)]))
                response = conn.read_response()
                assert response.status == 200
                assert response.body == b"hello"
        # The ASGI call of the last request returns a moment after its response reached
        # the client (and /records is another request): poll, with a deadline.
        deadline = time.monotonic() + 5.0
        while True:
            records = get_json(server, "/records")
            returned = [records.get(i, {}).get("closed_when_call_returned") for i in ids]
            if None not in returned or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    for request_id in ids:
        record = records[request_id]
        assert record["close_threads"] == [record["app_thread"]], record
        assert record["close_returned"] is True, record
        assert record["closed_when_call_returned"] is True, record
        if mode == "strict":
            assert record["final_send_returned_at_close"] is True, record
            assert record["final_send_held_until_closed"] is None, record
        else:
            assert record["final_send_held_until_closed"] is True, record
            assert record["final_send_returned_at_close"] is False, record


# --- smoke: the echo probe on every ASGI server in the table --------------------------


@pytest.fixture(scope="module")
def asgi_fleet() -> Iterator[dict[str, ServerProcess]]:
    """Every ASGI server hosting WSGIToASGI(wsgi_probe), started in parallel."""
    launches = [(spec, PROBE) for spec in ASGI_SERVERS.values()]
    with running_fleet(launches) as fleet:
        yield fleet


@pytest.mark.parametrize("server_name", list(ASGI_SERVERS))
def test_echo_probe_paths_and_query(asgi_fleet: dict[str, ServerProcess], server_name: str) -> None:
    environ = get_json(asgi_fleet[server_name], "/a%20b?x=1")
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/a b"
    assert environ["QUERY_STRING"] == "x=1"
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["SERVER_PORT"] == str(asgi_fleet[server_name].port)


@pytest.mark.parametrize("server_name", list(ASGI_SERVERS))
def test_chunked_upload_arrives_whole(
    asgi_fleet: dict[str, ServerProcess], server_name: str
) -> None:
    chunks = [b"a" * 1000, bytes(range(256)) * 300, b"\r\n0\r\n", b"z"]
    body = b"".join(chunks)
    request = request_bytes("POST", "/upload", [("Content-Type", "text/plain")], chunks)
    response = exchange(asgi_fleet[server_name].port, request, timeout=5.0)
    assert response.status == 200
    assert json.loads(response.body) == {
        "sha256": hashlib.sha256(body).hexdigest(),
        "length": len(body),
    }

    echo = exchange(
        asgi_fleet[server_name].port,
        request_bytes("POST", "/echo", body=iter([b"x"])),
        timeout=5.0,
    )
    environ = json.loads(echo.body)
    assert "CONTENT_LENGTH" not in environ  # W2A-ENV-09: chunked means no length at all
    assert environ["wsgi.input_terminated"] is True


# --- W2A-RESP-12: the app's exception reaches the server, logged once ----------------

RAISING = "tests.live.apps:w2a_raising"


@pytest.mark.parametrize("server_name", ["uvicorn-h11", "hypercorn-trio"])
def test_app_exception_is_logged_once_by_the_server(server_name: str) -> None:
    with running_server(server_name, RAISING) as server:
        early = exchange(server.port, request_bytes("GET", "/before"), timeout=5.0)
        assert early.status == 500
        assert b"LiveBoom" not in early.body
        with RawConnection(server.port, timeout=5.0) as conn:
            conn.send(request_bytes("GET", "/mid"))
            head, parser = conn.read_head()
            assert head.status == 200
            # Aborted, never a clean end: no terminating chunk before the close.
            with pytest.raises(h11.RemoteProtocolError, match="incomplete chunked read"):
                conn.read_body(head, parser, limit=1 << 20)
            assert not head.complete
        assert get_ok(server)
        deadline = time.monotonic() + 5.0
        while server.log().count("Traceback") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the server writes its log asynchronously
        log = server.log()
        assert log.count("Traceback") == 2, log  # one per failed request
        assert log.count("LiveBoom: raised before the first byte") == 1, log
        assert log.count("LiveBoom: raised mid-body") == 1, log
        assert "WSGIToASGI: " not in log, log  # bridgeway did not log them as well


def get_ok(server: ServerProcess) -> bool:
    response = exchange(server.port, request_bytes("GET", "/ok"), timeout=5.0)
    return response.status == 200 and response.body == b"ok"


# --- issue 13 point 4: odd-but-valid status lines, as the native WSGI servers send them -


def status_code_of(server: ServerProcess, line: str) -> int | None:
    """The status code of the first status line the server sends for ``line`` (read raw:
    an HTTP client library would take a 1xx for an interim response), or None when the
    server closed the connection without one."""
    target = "/status?line=" + urllib.parse.quote(line)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as sock:
        sock.sendall(request_bytes("GET", target, [("Connection", "close")]))
        data = b""
        while b"\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
    first = data.split(b"\r\n", 1)[0].split(b" ")
    return int(first[1]) if len(first) > 1 and first[1].isdigit() else None


ODD_LINES = ["123 Unknown", "199 Odd", "299 Odd", "600 Odd", "999 Odd"]
MALFORMED_LINES = ["20 OK", "1000 X"]  # gunicorn and wsgiref answer 500; waitress sends them


def test_odd_status_lines_are_served_as_the_native_wsgi_servers_serve_them() -> None:
    """The same WSGI app natively under gunicorn and waitress, and as
    ``WSGIToASGI(app)`` under hypercorn (and uvicorn's httptools protocol for the 1xx
    the issue names, which is what uvicorn sends for a native ``status_code=123``)."""
    launches = [
        ("gunicorn-gthread", "tests.live.apps:wsgi_probe"),
        ("waitress", "tests.live.apps:wsgi_probe"),
        ("hypercorn-asyncio", PROBE),
        ("uvicorn-httptools", PROBE),
    ]
    with running_servers([(SERVERS[name], app) for name, app in launches]) as servers:
        gunicorn, waitress, hypercorn, uvicorn = servers
        for line in ODD_LINES:
            native = status_code_of(gunicorn, line)
            assert native == int(line[:3])
            assert status_code_of(waitress, line) == native, line
            assert status_code_of(hypercorn, line) == native, line
        for line in MALFORMED_LINES:
            assert status_code_of(gunicorn, line) == 500
            assert status_code_of(hypercorn, line) == 500, line
        assert status_code_of(uvicorn, "123 Unknown") == status_code_of(gunicorn, "123 Unknown")
