"""Probe apps for the reliability tests, served by real servers as
``tests.reliability.probe_apps:w2a`` (an ASGI app: WSGIToASGI around a counting WSGI app)
and ``tests.reliability.probe_apps:a2w`` (a WSGI app: ASGIToWSGI around a counting ASGI
app).

Routes (both apps):
- ``/upload``: reads the body to its end, answers its length (a client that left
  mid-upload is counted in ``upload_aborted``).
- ``/download?n=N&size=S&delay=D``: N chunks of S bytes (endless without ``n``).
- ``/bad-header?kind=cr|lf|crlf|nul|name-crlf|name-nul|name-space``: the app produces a
  response header holding that character; the response must be a 500.
- ``/error``: the app raises an exception whose message holds ``SECRET-TOKEN``.
- ``/echo``: what the app saw (environ or scope headers) as JSON.
- ``/debug``: pid, thread count, asyncio task count, the adapter's pool figures and the
  counters: WSGI iterables made and closed (and closed more than once), app calls
  started and finished.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from bridgeway import ASGIToWSGI, WSGIToASGI
from tests.support.asgi_types import Receive, Scope, Send

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


SECRET = "SECRET-TOKEN"
BAD_HEADERS: dict[str, tuple[str, str]] = {
    "cr": ("X-Bad", "a\rInjected: 1"),
    "lf": ("X-Bad", "a\nInjected: 1"),
    "crlf": ("X-Bad", "a\r\nInjected: 1"),
    "nul": ("X-Bad", "a\0Injected: 1"),
    "name-crlf": ("X-Bad\r\nInjected", "1"),
    "name-nul": ("X-Bad\0Injected", "1"),
    "name-space": ("X-Bad Injected", "1"),
    "name-colon": ("X-Bad:Injected", "1"),
}

_lock = threading.Lock()
_counters: dict[str, int] = {
    "calls_started": 0,
    "calls_finished": 0,
    "iterables_made": 0,
    "iterables_closed": 0,
    "closed_twice": 0,
    "upload_aborted": 0,
    "download_aborted": 0,
}


def _count(name: str, by: int = 1) -> None:
    with _lock:
        _counters[name] += by


def _snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counters)


# --- WSGI side (served through WSGIToASGI) ----------------------------------------------


class Counted:
    """A response iterable that counts ``close()`` calls (exactly one is expected)."""

    def __init__(self, chunks: Iterator[bytes] | list[bytes]) -> None:
        self.chunks = chunks
        self.closes = 0
        _count("iterables_made")

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closes += 1
        _count("iterables_closed" if self.closes == 1 else "closed_twice")


def _stream(n: int | None, size: int, delay: float) -> Iterator[bytes]:
    chunk = b"x" * size
    i = 0
    while n is None or i < n:
        if delay:
            time.sleep(delay)
        yield chunk
        i += 1


def _wsgi_json(start_response: StartResponse, data: object, status: str = "200 OK") -> Counted:
    body = json.dumps(data, sort_keys=True).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return Counted([body])


def _wsgi_read_all(environ: WSGIEnvironment) -> int:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    total = 0
    if length:
        remaining = int(length)
        while remaining > 0:
            data = stream.read(min(remaining, 65536))
            if not data:
                break
            remaining -= len(data)
            total += len(data)
    elif environ.get("wsgi.input_terminated"):
        while data := stream.read(65536):
            total += len(data)
    return total


def _wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> Counted:
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/upload":
        try:
            length = _wsgi_read_all(environ)
        except OSError:  # ClientDisconnected: the client left mid-upload
            _count("upload_aborted")
            start_response("400 Bad Request", [("Content-Length", "0")])
            return Counted([])
        return _wsgi_json(start_response, {"length": length})
    if path == "/download":
        n = int(query["n"][0]) if "n" in query else None
        size = int(query.get("size", ["1024"])[0])
        delay = float(query.get("delay", ["0"])[0])
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Counted(_stream(n, size, delay))
    if path == "/bad-header":
        name, value = BAD_HEADERS[query["kind"][0]]
        start_response("200 OK", [("Content-Length", "2"), (name, value)])
        return Counted([b"ok"])
    if path == "/error":
        raise RuntimeError(f"the app failed: {SECRET}")
    if path == "/echo":
        seen = {k: v for k, v in environ.items() if k.startswith(("HTTP_", "CONTENT_"))}
        seen["body_length"] = str(_wsgi_read_all(environ))
        return _wsgi_json(start_response, seen)
    return _wsgi_json(start_response, {"path": path})


def wsgi_probe(environ: WSGIEnvironment, start_response: StartResponse) -> Counted:
    _count("calls_started")
    try:
        return _wsgi_app(environ, start_response)
    finally:
        _count("calls_finished")


w2a_adapter = WSGIToASGI(wsgi_probe, max_threads=8)


async def _asgi_json(send: Send, data: object, status: int = 200) -> None:
    body = json.dumps(data, sort_keys=True).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def w2a(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app the ASGI servers run; ``/debug`` is answered here, on the loop."""
    if scope["type"] == "http" and scope["path"] == "/debug":
        pool = w2a_adapter.pool()
        await _asgi_json(
            send,
            {
                "pid": os.getpid(),
                "threads": threading.active_count(),
                # This request's own task is not counted.
                "tasks": len(asyncio.all_tasks()) - 1,
                "thread_names": _thread_names(),
                "pool_busy": pool.busy,
                "pool_threads": pool.thread_count,
                "counters": _snapshot(),
            },
        )
        return
    await w2a_adapter(scope, receive, send)


# --- ASGI side (served through ASGIToWSGI) ----------------------------------------------

_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _query(scope: Scope) -> dict[str, list[str]]:
    return parse_qs(scope["query_string"].decode("latin-1"))


def _all_tasks() -> list[str]:
    """The tasks of every live loop the app ran on, by coroutine name."""
    names: list[str] = []
    for loop in list(_loops):
        if not loop.is_closed():
            for _ in range(5):  # all_tasks() of a loop another thread runs may race
                try:
                    tasks = asyncio.all_tasks(loop)
                    break
                except RuntimeError:
                    continue
            names += sorted(getattr(t.get_coro(), "__qualname__", "?") for t in tasks)
    return names


def _thread_names() -> list[str]:
    return sorted(re.sub(r"[-_]?\d+$", "", t.name) for t in threading.enumerate())


async def _asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    query = _query(scope)
    if path == "/upload":
        length, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                _count("upload_aborted")
                return
            length += len(message.get("body", b""))
            more = message.get("more_body", False)
        await _asgi_json(send, {"length": length})
        return
    if path == "/download":
        n = int(query["n"][0]) if "n" in query else None
        size = int(query.get("size", ["1024"])[0])
        delay = float(query.get("delay", ["0"])[0])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * size
        i = 0
        try:
            while n is None or i < n:
                if delay:
                    await asyncio.sleep(delay)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                i += 1
        except OSError:  # ClientDisconnected
            _count("download_aborted")
            return
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/bad-header":
        name, value = BAD_HEADERS[query["kind"][0]]
        headers = [(b"content-length", b"2"), (name.encode("latin-1"), value.encode("latin-1"))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path == "/error":
        raise RuntimeError(f"the app failed: {SECRET}")
    if path == "/echo":
        length, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            length += len(message.get("body", b""))
            more = message.get("more_body", False)
        seen = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
        await _asgi_json(send, {"headers": seen, "body_length": length})
        return
    if path == "/debug":
        tasks = _all_tasks()
        await _asgi_json(
            send,
            {
                "pid": os.getpid(),
                "threads": threading.active_count(),
                # This request's own task is not counted.
                "tasks": len(tasks) - 1,
                # Tasks other than the per-loop lifespan tasks (and this request's own).
                "request_tasks": sum(name != "Lifespan._main" for name in tasks) - 1,
                "task_names": tasks,
                "thread_names": _thread_names(),
                "loops_created": a2w.loops_created,
                "counters": _snapshot(),
            },
        )
        return
    await _asgi_json(send, {"path": path})


async def asgi_probe(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    _loops.add(asyncio.get_running_loop())
    _count("calls_started")
    try:
        await _asgi_app(scope, receive, send)
    finally:
        _count("calls_finished")


a2w = ASGIToWSGI(asgi_probe)
