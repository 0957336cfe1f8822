"""An in-process ASGI "server" for driving ``WSGIToASGI`` in tests.

``make_scope()`` builds an HTTP scope; a ``Peer`` plays the server's side of one
request: ``receive()`` hands out the request body chunks it was given (then blocks until
``disconnect()`` is called, and then returns ``http.disconnect``), and ``send()``
records every message. Hooks let a test slow the consumer down, disconnect after a
given number of body messages, or make ``send()`` raise ``OSError`` as a server may once
the client has gone (ASGI-www 2.4).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import anyio

from bridgeway._types import ASGIApp, Message, Scope, WSGIApp

DEFAULT_TIMEOUT = 10.0


def make_scope(
    method: str = "GET",
    path: str = "/",
    *,
    query_string: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    root_path: str = "",
    raw_path: bytes | None = None,
    http_version: str = "1.1",
    scheme: str = "http",
    server: Any = ("testserver", 8000),
    client: Any = ("127.0.0.1", 54321),
    **extra: Any,
) -> Scope:
    """An ASGI 3 HTTP scope; ``raw_path`` defaults to the path's UTF-8 bytes."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": http_version,
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode("utf-8") if raw_path is None else raw_path,
        "query_string": query_string,
        "root_path": root_path,
        "headers": list(headers),
        "server": server,
        "client": client,
    }
    scope.update(extra)
    return scope


# An HTTP/1.1 request has a body only with one of these (RFC 9112 §6.3).
CHUNKED = [(b"transfer-encoding", b"chunked")]


def content_length(n: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(n).encode())]


class Peer:
    """The server side of one request: feeds ``body`` and records what is sent.

    :param body: request body chunks (any iterable, consumed lazily so a huge body
        never sits in memory); each becomes one ``http.request`` message, the last one
        with ``more_body=False``. An empty iterable sends one empty message.
    :param truncate: after the chunks, answer ``http.disconnect`` instead of ending the
        body (a client that left mid-upload).
    :param hold: with ``truncate``, block after the chunks until ``disconnect()`` is
        called (a client that stalls mid-upload, then leaves).
    :param keep_body: record body bytes (turn off for huge responses; ``body_size``
        is always counted).
    :param send_delay: sleep this long in every ``send()`` of a body message (a slow
        consumer).
    :param disconnect_after: call ``disconnect()`` once this many non-empty body
        messages were sent.
    :param raise_after: ``send()`` raises ``OSError`` once this many non-empty body
        messages were sent.
    """

    def __init__(
        self,
        body: Iterable[bytes] = (),
        *,
        truncate: bool = False,
        hold: bool = False,
        keep_body: bool = True,
        send_delay: float = 0.0,
        disconnect_after: int | None = None,
        raise_after: int | None = None,
        on_send: Callable[[Message], Awaitable[None]] | None = None,
    ) -> None:
        self._chunks: Iterator[bytes] = iter(body)
        self._next: bytes | None = next(self._chunks, None)
        self._first = True
        self.truncate = truncate
        self.hold = hold
        self.keep_body = keep_body
        self.send_delay = send_delay
        self.disconnect_after = disconnect_after
        self.raise_after = raise_after
        self.on_send = on_send
        self.messages: list[Message] = []
        self.body_parts: list[bytes] = []
        self.body_size = 0
        self.body_messages = 0
        self.receive_calls = 0
        self.disconnect_seen = False  # receive() returned http.disconnect
        self.receive_threads: set[int] = set()
        self._disconnected = threading.Event()
        self._wake: anyio.Event | None = None
        self.first_body = anyio.Event() if _in_loop() else None

    # -- receive -------------------------------------------------------------
    async def receive(self) -> Message:
        self.receive_calls += 1
        self.receive_threads.add(threading.get_ident())
        if self._next is not None or self._first:
            self._first = False
            chunk = self._next if self._next is not None else b""
            self._next = next(self._chunks, None)
            more = self._next is not None or self.truncate
            return {"type": "http.request", "body": chunk, "more_body": more}
        if self.hold or not self.truncate:
            while not self._disconnected.is_set():
                self._wake = anyio.Event()
                await self._wake.wait()
        self.disconnect_seen = True
        return {"type": "http.disconnect"}

    def disconnect(self) -> None:
        """The client leaves: a pending or later ``receive()`` gets ``http.disconnect``
        (call from the event loop thread)."""
        self._disconnected.set()
        if self._wake is not None:
            self._wake.set()

    @property
    def disconnected(self) -> bool:
        return self._disconnected.is_set()

    # -- send ----------------------------------------------------------------
    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            if body:
                if self.raise_after is not None and self.body_messages >= self.raise_after:
                    raise OSError("client gone")
                self.body_messages += 1
                self.body_size += len(body)
                if self.keep_body:
                    self.body_parts.append(body)
                if self.first_body is not None:
                    self.first_body.set()
                if self.send_delay:
                    await anyio.sleep(self.send_delay)
                if (
                    self.disconnect_after is not None
                    and self.body_messages >= self.disconnect_after
                ):
                    self.disconnect()
            if not self.keep_body:
                message = {**message, "body": b""}
        self.messages.append(message)
        if self.on_send is not None:
            await self.on_send(message)

    # -- results -------------------------------------------------------------
    @property
    def start(self) -> Message:
        starts = [m for m in self.messages if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.messages
        return starts[0]

    @property
    def status(self) -> int:
        return int(self.start["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.start["headers"])

    def header(self, name: bytes) -> bytes | None:
        values = [v for n, v in self.headers if n == name]
        assert len(values) <= 1, values
        return values[0] if values else None

    @property
    def body(self) -> bytes:
        return b"".join(self.body_parts)

    @property
    def complete(self) -> bool:
        """The response ended with ``more_body=False``, after exactly one start."""
        bodies = [m for m in self.messages if m["type"] == "http.response.body"]
        return bool(bodies) and not bodies[-1].get("more_body", False)

    @property
    def final_messages(self) -> int:
        return sum(
            1
            for m in self.messages
            if m["type"] == "http.response.body" and not m.get("more_body", False)
        )


def _in_loop() -> bool:
    try:
        anyio.get_current_task()
    except RuntimeError:
        return False
    return True


async def call(
    app: ASGIApp,
    scope: Scope | None = None,
    peer: Peer | None = None,
    *,
    seconds: float = DEFAULT_TIMEOUT,
) -> Peer:
    """Run one request through ``app``; returns the peer (raises what the app raised)."""
    peer = peer if peer is not None else Peer()
    with anyio.fail_after(seconds):
        await app(scope if scope is not None else make_scope(), peer.receive, peer.send)
    return peer


async def wait_for(predicate: Callable[[], bool], seconds: float = DEFAULT_TIMEOUT) -> None:
    """Poll ``predicate`` (a condition another thread makes true) until it holds; fails
    after ``seconds``."""
    with anyio.fail_after(seconds):
        while True:
            if predicate():
                return
            await anyio.sleep(0.001)


async def wait_thread_event(event: threading.Event, seconds: float = DEFAULT_TIMEOUT) -> None:
    """Wait for a ``threading.Event`` set by the WSGI app, without blocking the loop."""
    await wait_for(event.is_set, seconds)


class Refused(NamedTuple):
    """How ``WSGIToASGI`` handled an app that failed before its response started."""

    raised: BaseException  # what propagated out of the ASGI call (the default)
    peer: Peer  # what bridgeway answered itself with propagate_exceptions=False


async def refused(wsgi_app: WSGIApp, scope: Scope | None = None, **settings: Any) -> Refused:
    """Run a WSGI app that fails before its response starts, both ways (W2A-RESP-12):
    by default its exception leaves the ASGI call and nothing was sent (the server
    answers 500, as for any ASGI app that raised); with ``propagate_exceptions=False``
    bridgeway answers the 500 itself (``Refused.peer``) and raises nothing."""
    from bridgeway import WSGIToASGI

    # The quiet run first: an app that records what it raised keeps the propagated one.
    quiet = WSGIToASGI(wsgi_app, propagate_exceptions=False, **settings)
    answered = await call(quiet, dict(scope or make_scope()))
    peer = Peer()
    try:
        await call(WSGIToASGI(wsgi_app, **settings), dict(scope or make_scope()), peer)
    except Exception as exc:
        raised = exc
    else:
        raise AssertionError(f"the app's error did not propagate; sent {peer.messages}")
    assert peer.messages == [], "a failed response must leave the 500 to the server"
    return Refused(raised, answered)
