"""The ASGI probe of the ASGIToWSGI conformance suite (``test_a2w_conformance.py``).

Served two ways: ``probe`` (``ASGIToWSGI(probe_app)`` behind a tiny environ shim) by
every WSGI server of the table, and ``probe_app`` natively by uvicorn, so that each
scenario can be compared with native ASGI serving. Import as
``tests.conformance.a2w_probe:NAME``.

What the app saw is answered as JSON (bytes shown as lists of ints) or, for what happens
after the response, written to marker files in ``$BRIDGEWAY_MARKERS`` (one file per
event, ``time.time()`` on the first line, a JSON document on the second).

Routes (``path`` below ``root_path``):

- anything not listed: *echo-scope*. Reads the body (logging each ``receive()`` as
  ``[type, len(body), more_body]``) and answers the scope, the log, the body's sha256
  and a few isolation checks (state copy, context variable, scope mutation, types).
- ``/tasks``: the tasks still pending on this request's loop (besides lifespan's).
- ``/pool``: how many loops the main adapter has, and how many are idle.
- ``/ws``: the echo, with status 426 (EXT-09: an upgrade request is plain HTTP).
- ``/send/NAME``: one A2W-SEND scenario each, see ``SEND`` (``/send/big?mib=N``: N MiB
  streamed).
- ``/send/invalid/CASE``: an invalid message (A2W-SEND-03); answers which exception.
- ``/recv/NAME``: receive() scenarios (after-body, two-tasks, no-read, slow, longpoll,
  record).
- ``/plain/NAME`` (in the WSGI shim, no bridgeway): plain WSGI apps that reproduce a
  server's own behaviour (``exc-info``, ``raise-mid``, ``204``, ``environ``), for the xfail reasons.
- ``/x/NAME/...`` (in the WSGI shim): other ASGIToWSGI adapters in the same process:
  ``nolifespan``, ``second`` (its own state), ``uvloop`` (``loop_factory``),
  ``failstart`` (startup.failed), ``slowstart`` (startup never completes).
- lifespan startup/shutdown write ``startup-PID-LOOP`` / ``shutdown-PID-LOOP``.

The WSGI shim in front of the adapter: ``/app/...`` is moved to ``SCRIPT_NAME=/app``
(what a mount does), and ``/shim/WHAT/...`` edits the environ in ways no server does
(no ``REMOTE_PORT``, ``SERVER_PROTOCOL=HTTP/2.0``, ``CONTENT_LENGTH=abc``, ...).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridgeway import ASGIToWSGI
from tests.support.asgi_types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


_request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="unset")
_LEGAL = (str, bytes, int, float, bool, list, dict, type(None))


def marker(name: str, data: object = None) -> None:
    """Write marker file ``name`` atomically (a reader never sees half a file)."""
    folder = os.environ.get("BRIDGEWAY_MARKERS")
    if not folder:
        return
    path = Path(folder) / name
    tmp = path.with_name(f".{name}.{threading.get_ident()}.tmp")
    tmp.write_text(f"{time.time()!r}\n{json.dumps(data)}")
    os.replace(tmp, path)


def loop_id() -> int:
    return id(asyncio.get_running_loop())


def jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return list(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def illegal_types(value: object, where: str = "scope") -> list[str]:
    """Paths of values that are not ASGI-legal types (A2W-SCOPE-14: no tuples)."""
    if not isinstance(value, _LEGAL):
        return [f"{where}: {type(value).__name__}"]
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += illegal_types(v, f"{where}[{k!r}]")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += illegal_types(v, f"{where}[{i}]")
    return found


def query(scope: Scope) -> dict[str, str]:
    text = scope["query_string"].decode("latin-1")
    return dict(p.partition("=")[::2] for p in text.split("&") if p)


async def respond(
    send: Send,
    body: bytes,
    status: int = 200,
    headers: Iterable[tuple[bytes, bytes]] = (),
    *,
    length: bool = True,
) -> None:
    head = [(b"content-type", b"application/json"), *headers]
    if length:
        head.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, data: object, status: int = 200) -> None:
    await respond(send, json.dumps(data, sort_keys=True).encode(), status)


async def read_body(receive: Receive) -> tuple[bytes, list[list[object]]]:
    chunks, log, more = [], [], True
    while more:
        message = await receive()
        body = message.get("body", b"")
        more = bool(message.get("more_body", False))
        log.append([message["type"], len(body), more])
        if message["type"] != "http.request":
            break
        chunks.append(body)
    return b"".join(chunks), log


# --- lifespan -----------------------------------------------------------------------


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    scope["state"].update({"obj": object(), "loop": loop_id()})
    _request_var.set("set during lifespan")  # must not leak into requests (A2W-LIFE-09)
    marker(f"startup-{os.getpid()}-{loop_id()}")
    await send({"type": "lifespan.startup.complete"})
    await receive()
    marker(f"shutdown-{os.getpid()}-{loop_id()}")
    await send({"type": "lifespan.shutdown.complete"})


# --- echo ---------------------------------------------------------------------------


async def echo(scope: Scope, receive: Receive, send: Send, status: int = 200) -> None:
    seen_var = _request_var.get()
    _request_var.set("set by a request")
    mutated_before = "probe.mutated" in scope
    scope["probe.mutated"] = True  # must not reach the next request's scope
    body, log = await read_body(receive)
    shown = {k: v for k, v in scope.items() if k not in ("state", "extensions", "probe.mutated")}
    state = scope.get("state")
    result: dict[str, Any] = {
        "scope": jsonable(shown),
        "extensions": sorted(scope.get("extensions") or {}),
        "has_state": state is not None,
        "receive": log,
        "sha256": hashlib.sha256(body).hexdigest(),
        "length": len(body),
        "context_var": seen_var,
        "mutated_before": mutated_before,
        "illegal_types": illegal_types(shown),
        "pid": os.getpid(),
        "loop": loop_id(),
    }
    if state is not None:
        result["state"] = {
            "saw_x": "x" in state,
            "obj": id(state.get("obj")),
            "loop": state.get("loop"),
        }
        state["x"] = 1  # a per-request copy: the next request must not see it
    await respond_json(send, result, status)


# --- A2W-SEND scenarios ---------------------------------------------------------------


async def _start(
    send: Send, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None, **extra: Any
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or [], **extra})


async def _body(send: Send, body: bytes = b"", more: bool = False) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": more})


async def send_scenario(name: str, scope: Scope, receive: Receive, send: Send) -> None:
    q = query(scope)
    if name == "hop":
        hop = [
            (b"transfer-encoding", b"chunked"),
            (b"connection", b"keep-alive"),
            (b"keep-alive", b"timeout=5"),
            (b"upgrade", b"h2c"),
            (b"te", b"trailers"),
            (b"trailer", b"x-t"),
            (b"proxy-authenticate", b"Basic"),
            (b"x-kept", b"yes"),
        ]
        await _start(send, 200, hop)
        await _body(send, b"hop")
    elif name == "big":  # MIB MiB streamed in 1 MiB pieces, no Content-Length
        block = bytes(range(256)) * 4096
        await _start(send, 200, [(b"content-type", b"application/octet-stream")])
        for _ in range(int(q.get("mib", "50"))):
            await _body(send, block, True)
        await _body(send)
    elif name == "status299":
        await respond(send, b"odd", 299)
    elif name == "status999":  # issue 13 point 4: any three-digit int, as uvicorn
        await respond(send, b"odder", 999)
    elif name == "buffers":  # issue 13 point 4: any buffer, as uvicorn writes it
        reused = bytearray(b"abc")
        await _start(send, 200, [(b"content-type", b"application/octet-stream")])
        await send({"type": "http.response.body", "body": memoryview(b"mv"), "more_body": True})
        await send({"type": "http.response.body", "body": reused, "more_body": True})
        reused[:] = b"XYZ"  # after send() returned: the bytes sent must not change
        await send({"type": "http.response.body", "body": bytearray(b"!")})
    elif name == "latin1":
        disposition = b'attachment; filename="caf\xc3\xa9.txt"'
        await respond(
            send, b"ok", headers=[(b"content-disposition", disposition), (b"x-latin", b"\xe9\xff")]
        )
    elif name == "raise-before":
        raise RuntimeError("probe: raised before http.response.start")
    elif name == "raise-after-start":
        await _start(send, 200, [(b"content-type", b"text/plain")])
        raise RuntimeError("probe: raised after http.response.start")
    elif name == "raise-after-final":  # Starlette's ServerErrorMiddleware: 500, re-raise
        await respond(send, b"late 500", 500)
        raise RuntimeError("probe: raised after the final body")
    elif name == "raise-mid":
        await _start(send, 200, [(b"content-type", b"text/plain")])
        for i in range(3):
            await _body(send, b"chunk %d\n" % i, more=True)
        raise RuntimeError("probe: raised mid-stream")
    elif name == "no-response":
        return
    elif name == "start-only":
        await _start(send, 200)
    elif name == "start-more-return":
        await _start(send, 200, [(b"content-type", b"text/plain")])
        await _body(send, b"partial", more=True)
    elif name == "cl-long":
        await _start(send, 200, [(b"content-length", b"5")])
        await _body(send, b"0123456789")
    elif name == "cl-short":
        await _start(send, 200, [(b"content-length", b"10")])
        await _body(send, b"01234")
    elif name == "cl-dup":
        await _start(send, 200, [(b"content-length", b"2"), (b"content-length", b"2")])
        await _body(send, b"ok")
    elif name == "cl-conflict":
        await _start(send, 200, [(b"content-length", b"2"), (b"content-length", b"3")])
        await _body(send, b"ok")
    elif name == "empty-chunks":
        await _start(send, 200, [(b"content-type", b"text/plain")])
        for _ in range(50):
            await _body(send, b"", more=True)
        await _body(send, b"x")
    elif name == "head":
        await _start(send, 200, [(b"content-length", b"100000")])
        await _body(send, b"h" * 100000)
    elif name in ("204", "304"):
        await _start(send, int(name), [(b"etag", b'"v1"')])
        await _body(send)
    elif name == "fixed":  # one final body, no length: the adapter adds it (HTTP-08)
        await _start(send, 200, [(b"content-type", b"text/plain")])
        await _body(send, b"fixed body")
    elif name == "stream":
        n, gap = int(q.get("n", "3")), float(q.get("gap", "0"))
        await _start(send, 200, [(b"content-type", b"text/plain")])
        for i in range(n):
            if i and gap:
                await asyncio.sleep(gap)
            await _body(send, json.dumps({"i": i, "t": time.time()}).encode() + b"\n", True)
        await _body(send)
    elif name == "trailers":  # EXT-08: trailers announced, sent, and dropped by WSGI
        await _start(send, 200, [(b"content-type", b"text/plain")], trailers=True)
        await _body(send, b"body before trailers")
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]})
    elif name == "hints":  # EXT-08: not advertised, sent anyway, ignored
        await send({"type": "http.response.early_hint", "links": [b"</s.css>; rel=preload"]})
        await send({"type": "http.response.debug", "info": {}})
        await respond(send, b"after hints")
    elif name == "after-complete":
        await respond(send, b"complete")
        try:
            await _body(send, b"extra")
        except Exception as exc:
            marker(f"after-complete-{q.get('id', 'x')}", type(exc).__name__)
        else:
            marker(f"after-complete-{q.get('id', 'x')}", None)
    elif name.startswith("pathsend"):
        await pathsend(name, q.get("id", "x"), scope, send)
    elif name == "sse":
        await sse(q.get("id", "x"), receive, send)
    elif name == "bg":
        await _start(send, 200, [(b"content-type", b"text/plain")])
        await _body(send, b"queued", more=True)
        await _body(send)
        await asyncio.sleep(1.5)
        marker(f"bg-{q.get('id', 'x')}", os.getpid())
    else:
        await respond_json(send, {"error": f"no scenario {name!r}"}, 404)


async def sse(name: str, receive: Receive, send: Send) -> None:
    """Events every 50 ms until the client leaves; how it was noticed goes to a marker."""
    await _start(send, 200, [(b"content-type", b"text/event-stream")])

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.create_task(watch())
    how = "none"
    try:
        for i in itertools.count():
            await _body(send, f"id: {i}\ndata: tick {i}\n\n".encode(), more=True)
            await asyncio.wait({watcher}, timeout=0.05)
            if watcher.done():
                how = "receive"
                return
    except OSError as exc:
        how = f"oserror:{type(exc).__name__}"
    except asyncio.CancelledError:
        how = "cancelled"
        raise
    finally:
        watcher.cancel()
        marker(f"sse-{name}", how)  # the app's cleanup ran (A2W-SEND-13)


PATHSEND_FILE = Path(__file__).resolve()  # any file the test can read too


async def pathsend(name: str, ident: str, scope: Scope, send: Send) -> None:
    """EXT-06: ``pathsend`` (the probe's own source), a missing path (a 500), a body
    mixed in after it (``RuntimeError`` in the app, recorded in ``pathsend-ID``)."""
    if "http.response.pathsend" not in (scope.get("extensions") or {}):
        await respond_json(send, {"error": "pathsend not advertised"}, 501)
        return
    path = str(PATHSEND_FILE) if name != "pathsend-missing" else "/nonexistent/probe.bin"
    size = PATHSEND_FILE.stat().st_size
    headers = [(b"content-type", b"text/x-python"), (b"content-length", b"%d" % size)]
    await _start(send, 200, headers)
    await send({"type": "http.response.pathsend", "path": path})
    if name == "pathsend-mixed":
        try:
            await _body(send, b"more")
        except Exception as exc:
            marker(f"pathsend-{ident}", isinstance(exc, RuntimeError))
        else:
            marker(f"pathsend-{ident}", None)


_INVALID: dict[str, list[Message]] = {
    "body-before-start": [{"type": "http.response.body", "body": b"x"}],
    "second-start": [
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.start", "status": 200, "headers": []},
    ],
    "unknown-type": [{"type": "http.response.nonsense"}],
    "status-str": [{"type": "http.response.start", "status": "200", "headers": []}],
    "status-99": [{"type": "http.response.start", "status": 99, "headers": []}],
    "status-1000": [{"type": "http.response.start", "status": 1000, "headers": []}],
    "header-name-str": [{"type": "http.response.start", "status": 200, "headers": [("x", b"1")]}],
    "header-value-str": [{"type": "http.response.start", "status": 200, "headers": [(b"x", "1")]}],
    "header-crlf": [
        {"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nb: c")]}
    ],
    "header-nul": [{"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\x00")]}],
    "pseudo-header": [
        {"type": "http.response.start", "status": 200, "headers": [(b":status", b"200")]}
    ],
    "body-str": [
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.body", "body": "text"},
    ],
    "extra-keys": [{"type": "http.response.start", "status": 200, "headers": [], "x-extra": 1}],
}


async def invalid(case: str, name: str, send: Send) -> None:
    """Send the invalid message(s) and record which exception ``send()`` raised, if any,
    in marker ``invalid-NAME``; then answer normally if the adapter still lets us (it
    may refuse everything after a protocol error: then the client gets a 500)."""
    raised = None
    started = False
    for message in _INVALID[case]:
        try:
            await send(message)
        except Exception as exc:
            raised = type(exc).__name__
            break
        started = started or message["type"] == "http.response.start"
    marker(f"invalid-{name}", raised)
    if not started:
        await _start(send, 200, [(b"content-type", b"application/json")])
    await _body(send, json.dumps({"case": case, "raised": raised}).encode())


# --- A2W-RECV scenarios ---------------------------------------------------------------


async def recv_scenario(name: str, scope: Scope, receive: Receive, send: Send) -> None:
    q = query(scope)
    if name == "after-body":  # A2W-RECV-06
        body, log = await read_body(receive)
        try:
            early: object = (await asyncio.wait_for(receive(), 0.3))["type"]
        except asyncio.TimeoutError:
            early = None
        await respond_json(send, {"early": early, "length": len(body)})
        started = time.monotonic()
        try:
            after: object = (await asyncio.wait_for(receive(), 2.0))["type"]
        except asyncio.TimeoutError:
            after = "timeout"
        again = (await asyncio.wait_for(receive(), 2.0))["type"]
        marker(f"after-body-{q.get('id', 'x')}", [after, again, time.monotonic() - started])
    elif name == "two-tasks":  # A2W-RECV-09
        parts: list[bytes] = []

        async def reader() -> None:
            while True:
                message = await receive()
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    return

        # Whichever task gets the final chunk ends; the other one waits for the
        # http.disconnect that comes after the response, so it is cancelled here.
        tasks = {asyncio.create_task(reader()), asyncio.create_task(reader())}
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        body = b"".join(parts)
        await respond_json(send, {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)})
    elif name == "no-read":  # A2W-RECV-10, HTTP-02: answer 413 without receive()
        await respond_json(send, {"refused": True}, 413)
    elif name == "record":  # A2W-RECV-05: the receive log, even if the client leaves
        body, log = await read_body(receive)
        marker(f"record-{q.get('id', 'x')}", log)
        await respond_json(send, {"receive": log})
    elif name == "slow":  # A2W-RECV-08: timers run while wsgi.input blocks
        started = time.monotonic()
        try:
            message = await asyncio.wait_for(receive(), 0.5)
            got: object = [message["type"], len(message.get("body", b""))]
        except asyncio.TimeoutError:
            got = "timeout"
        await respond_json(send, {"got": got, "after": time.monotonic() - started})
    elif name == "longpoll":  # A2W-RECV-11: silent app, waitress's disconnect probe
        await read_body(receive)
        message = await asyncio.wait_for(receive(), 30.0)
        marker(f"longpoll-{q.get('id', 'x')}", message["type"])
        await respond_json(send, {"late": True})
    else:
        await respond_json(send, {"error": f"no scenario {name!r}"}, 404)


async def probe_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    assert scope["type"] == "http", scope["type"]  # EXT-09: never a websocket scope
    path = scope["path"][len(scope.get("root_path", "")) :]
    if path.startswith("/send/invalid/"):
        await invalid(path.rsplit("/", 1)[1], query(scope).get("id", "x"), send)
    elif path.startswith("/send/"):
        await send_scenario(path[len("/send/") :], scope, receive, send)
    elif path.startswith("/recv/"):
        await recv_scenario(path[len("/recv/") :], scope, receive, send)
    elif path == "/tasks":  # tasks still pending on this loop (A2W-SEND-13)
        me = asyncio.current_task()
        names = [
            repr(t.get_coro())[:120]
            for t in asyncio.all_tasks()
            if t is not me and "lifespan" not in repr(t.get_coro())
        ]
        await respond_json(send, {"loop": loop_id(), "tasks": names})
    elif path == "/pool":  # loops of the main adapter: all, idle (this one is busy)
        pool = adapter.pool()
        loops, idle = list(getattr(pool, "_all", ())), list(getattr(pool, "_idle", ()))
        serving = [p.serving for p in loops if p not in idle]  # this request's among them
        await respond_json(send, {"all": len(loops), "idle": len(idle), "serving": serving})
    elif path == "/ws":
        await echo(scope, receive, send, 426)
    else:
        await echo(scope, receive, send)


# The opt-out: most SEND cases compare bridgeway's own 500 and its log line; the
# default (propagate_exceptions=True) is mounted at /x/propagate (A2W-SEND-05).
adapter = ASGIToWSGI(probe_app, propagate_exceptions=False)


# --- more adapters in the same process, mounted by the shim at /x/NAME (A2W-LIFE-*) ----


async def no_lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"  # a raw app that does not support lifespan (A2W-LIFE-06)
    await respond_json(send, {"has_state": "state" in scope})


async def second_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Its own lifespan and state (A2W-LIFE-10), next to ``adapter`` in one process."""
    if scope["type"] == "lifespan":
        await receive()
        scope["state"]["second"] = loop_id()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    loop = asyncio.get_running_loop()
    await respond_json(
        send,
        {
            "state": sorted(scope["state"]),
            "loop": type(loop).__module__ + "." + type(loop).__name__,
        },
    )


_handler_runs = itertools.count(1)


async def failing_start_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "probe: db down"})
        return
    marker(f"handler-ran-{os.getpid()}-{next(_handler_runs)}")  # must never happen
    await respond_json(send, {"handler": True})


async def slow_start_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await asyncio.sleep(3600)  # startup never completes (A2W-LIFE-12)
        return
    await respond_json(send, {"handler": True})


def _uvloop() -> asyncio.AbstractEventLoop:
    import uvloop

    return uvloop.new_event_loop()


MOUNTED: dict[str, ASGIToWSGI] = {
    "nolifespan": ASGIToWSGI(no_lifespan_app),
    "propagate": ASGIToWSGI(probe_app),
    "second": ASGIToWSGI(second_app),
    "uvloop": ASGIToWSGI(second_app, loop_factory=_uvloop),
    "failstart": ASGIToWSGI(failing_start_app),
    "slowstart": ASGIToWSGI(slow_start_app, startup_timeout=0.5, shutdown_timeout=0.5),
}


def _pop(environ: dict[str, Any], *keys: str) -> None:
    for key in keys:
        environ.pop(key, None)


_SHIMS: dict[str, Callable[[dict[str, Any]], None]] = {
    "no-remote-port": lambda e: e.pop("REMOTE_PORT", None),
    "no-remote-addr": lambda e: e.pop("REMOTE_ADDR", None),
    "no-server-name": lambda e: _pop(e, "SERVER_NAME", "SERVER_ADDR"),
    "empty-server-name": lambda e: e.update(SERVER_NAME="", SERVER_ADDR="127.0.0.1"),
    "unix-server": lambda e: e.update(SERVER_PORT=""),
    "http2": lambda e: e.update(SERVER_PROTOCOL="HTTP/2.0"),
    "odd-protocol": lambda e: e.update(SERVER_PROTOCOL="HTTP/9"),
    "bad-length": lambda e: e.update(CONTENT_LENGTH="abc"),
    "no-scheme": lambda e: e.pop("wsgi.url_scheme", None),
}


def _plain_raise_after_final() -> Iterator[bytes]:
    yield b"late 500"
    raise RuntimeError("plain WSGI generator raised after its body")


def _plain_raise_mid() -> Iterator[bytes]:
    yield b"chunk 0\n"
    yield b"chunk 1\n"
    raise RuntimeError("plain WSGI generator raised mid-stream")


def plain(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Plain WSGI apps, no bridgeway: reproductions of the servers' own behaviour."""
    name = environ["PATH_INFO"][len("/plain/") :]
    if name == "exc-info":  # PEP 3333 §Error Handling: a 500 replacing unsent headers
        try:
            raise RuntimeError("plain WSGI app error")
        except RuntimeError:
            headers = [("Content-Type", "text/plain"), ("Content-Length", "9")]
            start_response("500 Internal Server Error", headers, sys.exc_info())
        return [b"plain 500"]
    if name == "raise-before":  # the native reference of A2W-SEND-05's default
        raise RuntimeError("plain WSGI app raised before start_response")
    if name == "raise-mid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _plain_raise_mid()
    if name == "raise-after-final":
        headers = [("Content-Type", "text/plain"), ("Content-Length", "8")]
        start_response("500 Internal Server Error", headers)
        return _plain_raise_after_final()
    if name.startswith("environ"):
        shown = {k: v for k, v in environ.items() if isinstance(v, str)}
        body = json.dumps(shown, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if name == "204":
        start_response("204 No Content", [])
        return []
    start_response("404 Not Found", [("Content-Length", "0")])
    return []


def probe(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """``ASGIToWSGI(probe_app)`` behind a mount at ``/app`` and the environ shims."""
    path = environ.get("PATH_INFO", "")
    if path.startswith("/plain/"):
        return plain(environ, start_response)
    if path.startswith("/x/"):
        name = path.split("/")[2]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + f"/x/{name}"
        environ["PATH_INFO"] = path[len(f"/x/{name}") :]
        mounted: Iterable[bytes] = MOUNTED[name](environ, start_response)
        return mounted
    if path == "/app" or path.startswith("/app/"):
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/app"
        environ["PATH_INFO"] = path[len("/app") :]
    elif path.startswith("/shim/"):
        environ = dict(environ)  # a copy: the server reads its own environ afterwards
        _SHIMS[path.split("/")[2]](environ)
    result: Iterable[bytes] = adapter(environ, start_response)
    return result
