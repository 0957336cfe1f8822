"""Probe apps served by real servers in the live tests (import as ``tests.live.apps:NAME``).

``wsgi_probe`` routes:
- ``/stream?n=N&size=S&delay=D&drain=1``: N chunks of S bytes (endless without ``n``),
  each after an optional delay; ``drain=1`` reads the request body to its end first.
  Counts started and closed streams.
- ``/stats``: those counters as JSON (shows that ``close()`` ran after a disconnect).
- ``/upload``: reads ``wsgi.input`` to the end; answers ``{"sha256", "length"}``.
- anything else: the environ as JSON, values that JSON cannot hold shown by ``repr``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import flask

from bridgeway import WSGIToASGI

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_lock = threading.Lock()
_stats = {"streams_started": 0, "streams_closed": 0, "chunks_sent": 0}


def _json(start_response: StartResponse, data: object, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(data, sort_keys=True).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def environ_as_json(environ: WSGIEnvironment) -> dict[str, Any]:
    plain = (str, int, float, bool, type(None))
    return {k: v if type(v) in plain else repr(v) for k, v in environ.items()}


class Stream:
    """The streaming body: an iterable with ``close()``, counted in ``_stats``."""

    def __init__(self, n: int | None, size: int, delay: float) -> None:
        self.n, self.size, self.delay = n, size, delay
        with _lock:
            _stats["streams_started"] += 1

    def __iter__(self) -> Iterator[bytes]:
        chunk = b"x" * (self.size - 1) + b"\n"
        i = 0
        while self.n is None or i < self.n:
            if self.delay:
                time.sleep(self.delay)
            with _lock:
                _stats["chunks_sent"] += 1
            yield chunk
            i += 1

    def close(self) -> None:
        with _lock:
            _stats["streams_closed"] += 1


def _read_body(environ: WSGIEnvironment) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        remaining = int(length)
        while remaining > 0:
            data = stream.read(min(remaining, 65536))
            if not data:
                break
            remaining -= len(data)
            yield data
    elif environ.get("wsgi.input_terminated"):
        while data := stream.read(65536):
            yield data


def wsgi_probe(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/stream":
        n = int(query["n"][0]) if "n" in query else None
        size = int(query.get("size", ["1024"])[0])
        delay = float(query.get("delay", ["0"])[0])
        if "drain" in query:
            for _ in _read_body(environ):
                pass
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Stream(n, size, delay)
    if path == "/status":
        # The status line comes from the query (percent-decoded): odd-but-valid statuses
        # as the native servers serve them (issue 13 point 4).
        start_response(query["line"][0], [("Content-Type", "text/plain")])
        return [b"odd"]
    if path == "/stats":
        with _lock:
            return _json(start_response, dict(_stats))
    if path == "/upload":
        digest, length = hashlib.sha256(), 0
        for data in _read_body(environ):
            digest.update(data)
            length += len(data)
        return _json(start_response, {"sha256": digest.hexdigest(), "length": length})
    return _json(start_response, environ_as_json(environ))


w2a_probe = WSGIToASGI(wsgi_probe)
w2a_probe_1 = WSGIToASGI(wsgi_probe, max_threads=1)


flask_app = flask.Flask(__name__)


@flask_app.get("/")
def index() -> str:
    return f'<a href="{flask.url_for("hello", name="world")}">hello</a>'


@flask_app.get("/hello/<name>")
def hello(name: str) -> dict[str, str]:
    return {"hello": name, "script_root": flask.request.script_root}


@flask_app.post("/echo")
def echo() -> dict[str, Any]:
    # get_data() first: werkzeug then parses the form from the cached bytes.
    data = flask.request.get_data(cache=True)
    return {
        "form": flask.request.form.to_dict(),
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


# How many responses were closed: Flask runs call_on_close callbacks from the close()
# of its response iterable (PEP 3333), so this counts the adapter's close() calls.
_flask_closes = {"count": 0, "hello": 0}
_flask_closes_lock = threading.Lock()


@flask_app.after_request
def count_close(response: flask.Response) -> flask.Response:
    # /hello responses counted apart: a test's own requests, not the readiness probe's
    # (whose close() may still be running when the test starts).
    hello = flask.request.path.startswith("/hello/")

    def closed() -> None:
        with _flask_closes_lock:
            _flask_closes["count"] += 1
            _flask_closes["hello"] += hello

    response.call_on_close(closed)
    return response


@flask_app.get("/closes")
def closes() -> dict[str, int]:
    return dict(_flask_closes)


w2a_flask = WSGIToASGI(flask_app)
w2a_flask_nowait = WSGIToASGI(flask_app, close_after_send=False)
w2a_flask_strict = WSGIToASGI(flask_app, close_after_send=True)


class LiveBoom(Exception):
    pass


def _raising(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/before":
        raise LiveBoom("raised before the first byte")
    if environ["PATH_INFO"] == "/mid":
        yield b"part"
        raise LiveBoom("raised mid-body")
    yield b"ok"


w2a_raising = WSGIToASGI(_raising)


# --- close() order, per request (W2A-RESP-13 both ways) -------------------------------
#
# ``w2a_close_order`` / ``w2a_close_order_strict`` serve a WSGI app whose one-chunk body
# records, for the request named by its ``X-Request-Id`` header, the thread of the app
# call and of each close(), and whether the final send() had returned when close() ran.
# An ASGI wrapper around WSGIToASGI sees the server's side: with the fast close (the
# default) it holds the final send() until close() has returned, which completes only
# if the adapter does not wait for that send() first; with the strict order it notes
# that send() returned. It also notes whether close() had returned by the time the
# ASGI call returned. ``GET /records`` answers all of it as JSON.

_order_lock = threading.Lock()
_order: dict[str, dict[str, Any]] = {}


class _OrderedBody:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def __iter__(self) -> Iterator[bytes]:
        yield b"hello"

    def close(self) -> None:
        record = self.record
        record["close_threads"].append(threading.get_ident())
        record["final_send_returned_at_close"] = record["final_send_returned"]
        record["close_returned"] = True  # the last thing close() does


def _close_order_wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/records":
        with _order_lock:
            return _json(start_response, _order)
    record = {
        "app_thread": threading.get_ident(),
        "close_threads": [],
        "final_send_returned": False,
        "final_send_returned_at_close": None,
        "close_returned": False,
        "final_send_held_until_closed": None,
        "closed_when_call_returned": None,
    }
    with _order_lock:
        _order[environ.get("HTTP_X_REQUEST_ID", "")] = record
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return _OrderedBody(record)


def _close_order(close_after_send: bool) -> Any:
    import anyio

    adapter = WSGIToASGI(_close_order_wsgi, close_after_send=close_after_send)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/records":
            await adapter(scope, receive, send)
            return
        request_id = dict(scope["headers"]).get(b"x-request-id", b"").decode()

        async def watched_send(message: Any) -> None:
            final = message["type"] == "http.response.body" and not message.get("more_body")
            if not final:
                await send(message)
                return
            record = _order[request_id]
            if not close_after_send:
                # Hold the last send() until close() has returned (bounded): with the
                # fast close it runs meanwhile; an adapter waiting for this send()
                # first would leave it waiting here until the deadline.
                with anyio.move_on_after(2.0):
                    while True:  # close() runs in the app's thread: polled
                        if record["close_returned"]:
                            break
                        await anyio.sleep(0.001)
                record["final_send_held_until_closed"] = record["close_returned"]
            await send(message)
            record["final_send_returned"] = True

        await adapter(scope, receive, watched_send)
        _order[request_id]["closed_when_call_returned"] = _order[request_id]["close_returned"]

    return app


w2a_close_order = _close_order(close_after_send=False)  # the default, spelt out
w2a_close_order_strict = _close_order(close_after_send=True)
