"""A bare round trip, ``WSGIToASGI(ASGIToWSGI(app))`` with nothing in between: the
server's ``send()`` gets what the app sends that WSGI cannot carry in order (trailers,
empty body messages, messages that break the response cycle), the app's ``send()``
waits for it and raises what it raised, and an app that sends nothing gets the
server's own answer (``bridgeway._a2w.nested``, docs/asgi-to-wsgi.md "The live round
trip"). Each case runs the same app natively and through the round trip under one raw
server, on both anyio backends, and compares what the server got, what the app's
``send()`` raised and what left the ASGI call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal, cast

import anyio
import pytest
from starlette.testclient import TestClient

from bridgeway import ASGIToWSGI, WSGIToASGI
from bridgeway._types import Message, Receive, Scope, Send
from bridgeway.errors import ProtocolError
from tests.support.w2a_driver import make_scope

Wrap = Callable[[Any], Any]
START = "http.response.start"
BODY = "http.response.body"
TRAILERS = "http.response.trailers"


@pytest.fixture
def bridged() -> Iterator[Wrap]:
    adapters: list[ASGIToWSGI] = []

    def wrap(app: Any) -> Any:
        adapter = ASGIToWSGI(app, lifespan="off")
        adapters.append(adapter)
        return WSGIToASGI(adapter)

    yield wrap
    for adapter in adapters:
        adapter.shutdown(timeout=5.0)


def check(holds: bool, why: str) -> None:
    if not holds:
        raise AssertionError(why)  # (not assert: pytest's rewriting adds object reprs)


class ClientRules:
    """What Starlette's TestClient asserts in its ``send()`` (1.10), as a judge."""

    def __init__(self) -> None:
        self.started = self.trailers = self.body_done = self.complete = False

    def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == START:
            check(not self.started, "multiple http.response.start")
            self.started, self.trailers = True, message.get("trailers", False)
        elif kind == BODY:
            check(self.started, "body without start")
            check(not self.complete, "body after response completed")
            check(not self.body_done, "body after body completed")
            self.body_done = not message.get("more_body", False)
            self.complete = self.body_done and not self.trailers
        elif kind == TRAILERS:
            check(self.trailers, "trailers without declaring trailers")
            check(self.body_done, "trailers before body completed")
            check(not self.complete, "trailers after response completed")
            self.complete = not message.get("more_trailers", False)


class Server:
    """One request of a raw ASGI server: ``log`` is what reached its ``send()`` (and,
    interleaved, ``app:`` entries the app writes when a send returns); ``judge`` may
    raise for a message, as a server's own checks do."""

    def __init__(self, judge: Callable[[Message], None] | None = None) -> None:
        self.judge = judge
        self.log: list[str] = []
        self.raised: list[BaseException] = []  # what send() raised
        self.scope: Scope = make_scope(
            headers=[(b"host", b"testserver")],
            client=("127.0.0.1", 50000),
            server=("testserver", 80),
            extensions={"http.response.trailers": {}, "http.response.debug": {}},
        )
        self.asked = False

    async def receive(self) -> Message:
        if not self.asked:
            self.asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()  # the client stays (cancelled at the request's end)
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == BODY:
            body = bytes(message.get("body", b""))
            self.log.append(f"{kind} {body!r} more={bool(message.get('more_body'))}")
        else:
            self.log.append(kind)
        if self.judge is not None:
            try:
                self.judge(message)
            except BaseException as exc:
                self.raised.append(exc)
                raise


def sender(messages: list[Message], server: Server, note: set[str]) -> Any:
    """An app that sends ``messages``; after each one whose type is in ``note`` it logs
    ``app: <type>`` in the server's log once its send() returned, and records what a
    send() raised (then raises it on)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            try:
                await send(message)
            except BaseException as exc:
                server.log.append(f"app raised {type(exc).__name__}")
                app.raised = exc  # type: ignore[attr-defined]
                raise
            if message["type"] in note and (message["type"] != BODY or message.get("more_body")):
                server.log.append(f"app: {message['type']}")

    app.raised = None  # type: ignore[attr-defined]
    return app


async def serve(
    messages: list[Message],
    wrap: Wrap | None,
    judge: Callable[[Message], None] | None = None,
    note: set[str] = frozenset(),  # type: ignore[assignment]
    method: str = "GET",
) -> dict[str, Any]:
    """Serve ``messages`` once (natively when ``wrap`` is None): what the server got,
    whether the app's send() raised the very exception the server's send() raised,
    and what left the ASGI call."""
    server = Server(judge)
    server.scope["method"] = method
    app = sender(messages, server, note)
    left: BaseException | None = None
    with anyio.fail_after(10):
        try:
            await (app if wrap is None else wrap(app))(server.scope, server.receive, server.send)
        except Exception as exc:
            left = exc
    raised = app.raised
    by_server = bool(server.raised) and raised is server.raised[0]
    return {
        "log": server.log,
        "app raised": None if raised is None else (type(raised), str(raised)),
        "the server's own": by_server,
        "left the call": None if left is None else (type(left), left is raised),
    }


def start(trailers: bool = False) -> Message:
    return {"type": START, "status": 200, "headers": [], "trailers": trailers}


def body(data: bytes = b"", more: bool = False) -> Message:
    return {"type": BODY, "body": data, "more_body": more}


def trailers(more: bool = False) -> Message:
    return {"type": TRAILERS, "headers": [(b"x-item", b"one")], "more_trailers": more}


# ------------------------------------------------------------------ 1. trailers wait


async def test_the_apps_trailers_send_returns_once_the_server_has_them(bridged: Wrap) -> None:
    """Natively the server's send() has the trailers when the app's returns (Starlette's
    test_closing_completed_trailers_waits_for_application); through the round trip the
    app's send() returned before WSGIToASGI sent them."""
    messages = [start(True), body(b"hello"), trailers(more=True), trailers()]
    native = await serve(messages, None, note={TRAILERS})
    assert native["log"][-4:] == [TRAILERS, f"app: {TRAILERS}", TRAILERS, f"app: {TRAILERS}"]
    assert await serve(messages, bridged, note={TRAILERS}) == native


async def test_the_apps_trailers_send_raises_what_the_servers_raised(bridged: Wrap) -> None:
    def gone(message: Message) -> None:
        if message["type"] == TRAILERS:
            raise RuntimeError("the client went away before the trailers")

    messages = [start(True), body(b"hello"), trailers()]
    native = await serve(messages, None, gone)
    assert native["the server's own"]
    assert native["left the call"] == (RuntimeError, True)
    assert await serve(messages, bridged, gone) == native


# ------------------------------------------------------- 2. the server judges a cycle

BROKEN = {
    "nothing": [],
    "trailers-without-start": [trailers()],
    "trailers-not-declared": [start(), body(b"x"), trailers()],
    "trailers-before-the-body-ended": [start(True), trailers()],
    "body-after-the-body": [start(True), body(), body()],
    "trailers-after-the-last": [start(True), body(), trailers(), trailers()],
    "second-start-mid-stream": [start(), body(b"a", more=True), start()],
}


@pytest.mark.parametrize("case", list(BROKEN))
async def test_a_broken_response_cycle_is_the_servers_to_judge(bridged: Wrap, case: str) -> None:
    """Starlette's test_invalid_trailer_sequence: the TestClient's own AssertionError
    leaves the app's send() and its ASGI call, the same object; through the round trip
    bridgeway raised its ProtocolError (or dropped the message, or answered 500)."""
    native = await serve(BROKEN[case], None, ClientRules())
    if case != "nothing":
        assert native["the server's own"]
        assert native["left the call"] == (AssertionError, True)
    assert await serve(BROKEN[case], bridged, ClientRules()) == native


@pytest.mark.parametrize("case", [c for c in BROKEN if c != "nothing"])
async def test_bridgeways_check_is_the_floor(bridged: Wrap, case: str) -> None:
    """A server that takes anything got the broken message natively and raised
    nothing; through the round trip it gets it too, in order, and then bridgeway's own
    ProtocolError leaves the app's send()."""
    native = await serve(BROKEN[case], None)
    assert native["app raised"] is None
    assert native["left the call"] is None
    through = await serve(BROKEN[case], bridged)
    assert through["log"][: len(native["log"])] == native["log"]
    assert through["app raised"] is not None
    assert through["app raised"][0] is ProtocolError
    assert through["left the call"] == (ProtocolError, True)


# ------------------------------------------------------------ 3. empty body messages


@pytest.mark.parametrize(("method", "data"), [("GET", b""), ("HEAD", b"chunk")])
async def test_empty_body_messages_wait_for_the_server(
    bridged: Wrap, method: str, data: bytes
) -> None:
    """Each empty ``more_body`` message (every body of a HEAD response is one) reaches
    the server's send() and the app's send() returns after it, as natively; through the
    round trip ASGIToWSGI dropped them (A2W-SEND-12) and the app ran ahead."""
    messages = [start(), *(body(data, more=True) for _ in range(3)), body()]
    native = await serve(messages, None, note={BODY}, method=method)
    chunk = f"{BODY} {data!r} more=True"
    assert native["log"] == [START, *[chunk, f"app: {BODY}"] * 3, f"{BODY} b'' more=False"]
    assert await serve(messages, bridged, note={BODY}, method=method) == native


# ------------------------------------------------------- the same under the TestClient


def client_for(app: Any, backend: str) -> TestClient:
    return TestClient(app, backend=cast(Literal["asyncio", "trio"], backend))


@pytest.mark.parametrize("case", list(BROKEN))
def test_the_test_clients_assertions_fire(bridged: Wrap, anyio_backend: str, case: str) -> None:
    """What the installed TestClient judges, it judges through the bare round trip too
    (the same error, the same message); what it takes (Starlette 1.7, the pin on Python
    3.10, checks less than 1.10) meets bridgeway's own check, the floor."""
    messages = BROKEN[case]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    def outcome(asgi: Any) -> tuple[object, str]:
        try:
            response = client_for(asgi, anyio_backend).get("/")
        except Exception as exc:  # what leaves the TestClient, compared below
            return type(exc), str(exc)
        return "response", str(response.status_code)

    native, through = outcome(app), outcome(bridged(app))
    if native[0] is AssertionError:
        assert through == native
    else:
        assert through[0] is ProtocolError, (native, through)


def test_the_test_client_has_the_trailers_when_the_apps_send_returns(
    bridged: Wrap, anyio_backend: str
) -> None:
    """Starlette's test_closing_completed_trailers_waits_for_application. (Starlette
    1.7's TestClient, the pin on Python 3.10, hands the response over only once the app
    returned, so there both ways have the trailers by then; 1.10's streams it.)"""
    for way in ("native", "bridged"):
        trailers_sent = threading.Event()

        async def app(
            scope: Scope, receive: Receive, send: Send, sent: threading.Event = trailers_sent
        ) -> None:
            await send(start(True))
            await send(body(b"hello"))
            await send(trailers())
            sent.set()
            await anyio.sleep(0.05)

        client = client_for(app if way == "native" else bridged(app), anyio_backend)
        with client.stream("GET", "/") as response:
            assert next(response.iter_raw()) == b"hello"
            assert trailers_sent.wait(timeout=10)
            assert response.extensions["http.response.trailers"] == [(b"x-item", b"one")]


# ------------------------------------------------------- 4. an invalid Content-Length


async def echo_body(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers the body it received and the Content-Length header it saw."""
    data = b""
    while True:
        message = await receive()
        data += message.get("body", b"")
        if not message.get("more_body", False):
            break
    length = dict(scope["headers"]).get(b"content-length", b"-")
    await send({"type": START, "status": 200, "headers": [(b"x-length", length)]})
    await send(body(data))


def test_an_invalid_content_length_is_the_servers_to_judge(
    bridged: Wrap, anyio_backend: str
) -> None:
    """Starlette's test_received_bytes_are_counted_with_unreliable_content_length: a
    test client passes ``Content-Length: invalid`` on, and the app reads the body;
    WSGIToASGI answered 400 before its WSGI app ran. When that app is an ASGIToWSGI the
    request is the server's to judge; behind WSGI middleware the 400 stays."""

    def middleware(app: Any) -> Any:
        return lambda environ, start_response: app(environ, start_response)

    apps = {
        "native": echo_body,
        "bridged": bridged(echo_body),
        "behind middleware": WSGIToASGI(middleware(ASGIToWSGI(echo_body, lifespan="off"))),
    }
    got = {}
    for way, app in apps.items():
        response = client_for(app, anyio_backend).post(
            "/", content=b"12345", headers={"Content-Length": "invalid"}
        )
        got[way] = (response.status_code, response.headers.get("x-length"), response.content)
    assert got["native"] == (200, "invalid", b"12345")
    assert got["bridged"] == got["native"]
    assert got["behind middleware"][0] == 400
