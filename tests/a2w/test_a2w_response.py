"""A2W-SEND: the response under ASGIToWSGI: streaming with backpressure, disconnect,
work after the final body, errors and out-of-order messages (A2W-SEND-03..13)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from array import array
from http import HTTPStatus
from typing import Any, cast

import pytest

from bridgeway import ASGIToWSGI, ClientDisconnected, ProtocolError
from bridgeway._types import Message, Receive, Scope, Send
from tests.support.a2w_driver import call, make_environ, respond, serving
from tests.support.waiting import TIMEOUT, wait_until

START: Message = {"type": "http.response.start", "status": 200, "headers": []}


def body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


# ------------------------------------------------------------ streaming (point 5)


def test_start_response_waits_for_first_body_and_send_waits_for_the_server() -> None:
    """A2W-SEND-07 / ASGI-www §Response Start: start_response is called when the first
    body arrives, not at http.response.start; each chunk is handed over as soon as it is
    sent; the app's send() returns only once the server pulls the next item."""
    log: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({**START, "headers": [(b"x-a", b"1")]})
        log.append("app sent start")
        await asyncio.sleep(0.01)
        for i in range(3):
            log.append(f"app send {i}")
            await send(body(b"c%d" % i, more=True))
            log.append(f"app sent {i}")
        await send(body(b"end"))
        log.append("app sent end")

    with serving(app, lifespan="off") as adapter:
        result = call(adapter, log=log)
    assert result.chunks == [b"c0", b"c1", b"c2", b"end"]
    assert "Content-Length" not in dict(result.headers)  # streamed: the server frames it
    assert log == [
        "app sent start",
        "app send 0",
        "start_response",
        "pull",
        "got 2",
        "pull",  # the server asks for more: only now does send() return
        "app sent 0",
        "app send 1",
        "got 2",
        "pull",
        "app sent 1",
        "app send 2",
        "got 2",
        "pull",
        "app sent 2",
        "app sent end",
        "got 3",
        "pull",
    ]


def test_app_cannot_run_ahead_of_a_slow_server() -> None:
    """A2W-SEND-07 (b): with a slow reader the app is never more than one chunk ahead."""
    sent = 0
    lead: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal sent
        await send(START)
        for _ in range(20):
            sent += 1
            await send(body(b"x" * 1000, more=True))
        await send(body(b""))

    with serving(app, lifespan="off") as adapter:
        iterable = adapter(make_environ(), lambda *a: lambda b: None)
        received = 0
        for _chunk in iterable:
            received += 1
            lead.append(sent - received)
            time.sleep(0.005)
        cast(Any, iterable).close()  # a WSGI server closes what has close() (PEP 3333)
    assert received == 20
    assert max(lead) <= 1


def test_empty_chunks_are_skipped() -> None:
    """A2W-SEND-12: body=b"" with more_body=True never ends the response or reaches the
    server as a write; a final empty body after start gives an empty valid response."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        for _ in range(50):
            await send(body(b"", more=True))
        await send(body(b"x", more=True))
        await send(body(b""))

    async def empty(scope: Scope, receive: Receive, send: Send) -> None:
        await send({**START, "status": 204})
        await send(body(b""))

    with serving(app, lifespan="off") as adapter:
        result = call(adapter)
    assert result.chunks == [b"x"]
    with serving(empty, lifespan="off") as adapter:
        result = call(adapter)
    assert result.status == "204 No Content"
    assert result.chunks == []
    assert result.header("Content-Length") is None


# ------------------------------------------------------- headers, HEAD, framing


def test_single_final_body_gets_content_length() -> None:
    """HTTP-08: a response that is one final body message gets a Content-Length."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"hello")

    with serving(app, lifespan="off") as adapter:
        result = call(adapter)
    assert result.status == "200 OK"
    assert result.header("Content-Length") == "5"
    assert result.chunks == [b"hello"]


def test_hop_by_hop_headers_are_dropped() -> None:
    """A2W-SEND-02: connection-specific headers from the app are dropped (the WSGI
    server frames the message, PEP 3333 §Other HTTP Features); others keep order and
    duplicates, and latin-1 values survive."""
    headers = [
        (b"connection", b"keep-alive"),
        (b"transfer-encoding", b"chunked"),
        (b"keep-alive", b"timeout=5"),
        (b"upgrade", b"h2c"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"x-name", b"caf\xe9"),
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"ok", headers=headers)

    with serving(app, lifespan="off") as adapter:
        result = call(adapter)
    assert result.headers == [
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("x-name", "caf\xe9"),
        ("Content-Length", "2"),
    ]


def test_head_drops_body_bytes() -> None:
    """HTTP-04: a HEAD response carries no body bytes; the app's Content-Length stays."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({**START, "headers": [(b"content-length", b"11")]})
        await send(body(b"hello ", more=True))
        await send(body(b"world"))

    with serving(app, lifespan="off") as adapter:
        head = call(adapter, make_environ("HEAD"))
        get = call(adapter, make_environ("GET"))
    assert head.code == 200
    assert head.body == b""
    assert head.header("Content-Length") == "11"
    assert get.body == b"hello world"
    assert get.header("Content-Length") == "11"  # the app's header, exactly once


def test_asgi2_double_callable() -> None:
    """An ASGI 2 app (a class called with the scope, then with receive/send) works."""

    class App2:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            if self.scope["type"] == "lifespan":
                await receive()
                await send({"type": "lifespan.startup.complete"})
                await receive()
                await send({"type": "lifespan.shutdown.complete"})
                return
            await respond(send, self.scope["path"].encode())

    with serving(App2) as adapter:
        result = call(adapter, make_environ(path="/two"))
    assert result.code == 200
    assert result.body == b"/two"


def test_content_length_longer_body_is_cut(caplog: pytest.LogCaptureFixture) -> None:
    """A2W-SEND-10: a body longer than the app's content-length is cut at N and logged."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({**START, "headers": [(b"content-length", b"5")]})
        await send(body(b"0123456789"))

    with serving(app, lifespan="off") as adapter:
        result = call(adapter)
    assert result.body == b"01234"
    assert any("more than its Content-Length" in r.getMessage() for r in caplog.records)


def test_content_length_shorter_body_aborts() -> None:
    """A2W-SEND-10: a body shorter than its content-length is never ended normally: the
    iterator raises (after bytes went out) so the server drops the connection."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({**START, "headers": [(b"content-length", b"10")]})
        await send(body(b"01234", more=True))
        await send(body(b""))

    with serving(app, lifespan="off") as adapter:
        result = call(adapter, expect_error=True)
    assert result.chunks == [b"01234"]
    assert isinstance(result.error, ProtocolError)


# ------------------------------------------------------------ disconnect (point 6)


def test_early_close_disconnects_the_app() -> None:
    """A2W-RECV-07 / A2W-SEND-08: when the server closes the iterable early, the app's
    pending send() raises ClientDisconnected (an OSError, spec 2.4), its next receive()
    returns http.disconnect, and the task finishes by itself."""
    seen: list[Any] = []
    finished = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await receive()
            await send(START)
            try:
                for i in range(1000):
                    await send(body(b"event %d\n" % i, more=True))
            except OSError as exc:
                seen.append(type(exc))
            seen.append(await asyncio.wait_for(receive(), 1.0))
            try:
                await send(body(b"more", more=True))
            except OSError as exc:
                seen.append(type(exc))
        finally:
            finished.set()

    with serving(app, lifespan="off") as adapter:
        result = call(adapter, take=2)
        assert result.chunks == [b"event 0\n", b"event 1\n"]
        assert finished.wait(TIMEOUT)
    assert seen == [ClientDisconnected, {"type": "http.disconnect"}, ClientDisconnected]
    assert issubclass(ClientDisconnected, OSError)


def test_pending_receive_resolves_on_close() -> None:
    """A2W-RECV-07: a receive() already waiting in a listener task (Starlette's
    listen_for_disconnect) resolves to http.disconnect when the server closes early."""
    heard: list[Message] = []
    finished = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

        async def listen() -> None:
            heard.append(await receive())

        listener = asyncio.ensure_future(listen())
        try:
            await send(START)
            while not listener.done():
                await send(body(b"tick\n", more=True))
        except OSError:
            pass
        finally:
            await asyncio.wait({listener}, timeout=1.0)
            finished.set()

    with serving(app, lifespan="off") as adapter:
        call(adapter, take=3)
        assert finished.wait(TIMEOUT)
    assert heard == [{"type": "http.disconnect"}]


def test_task_ignoring_disconnect_is_cancelled_after_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A2W-SEND-13: a task that ignores the disconnect is cancelled after
    disconnect_grace (CancelledError inside the app, so its finally runs), off the
    worker thread, and no error is logged."""
    cancelled = threading.Event()
    closed_at: list[float] = []
    cancelled_at: list[float] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        try:
            await send(body(b"first", more=True))
            await send(body(b"second", more=True))
        except OSError:
            pass
        try:
            await asyncio.sleep(600)  # ignores the client being gone
        except asyncio.CancelledError:
            cancelled_at.append(time.monotonic())
            cancelled.set()
            raise

    with serving(app, lifespan="off", disconnect_grace=0.3) as adapter:
        call(adapter, take=1)
        closed_at.append(time.monotonic())
        assert not cancelled.is_set()
        assert cancelled.wait(TIMEOUT)
    assert 0.25 <= cancelled_at[0] - closed_at[0] < 5.0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ------------------------------------------------ work after the final body (point 7)


def test_background_work_does_not_hold_the_caller() -> None:
    """A2W-SEND-11: code after the final body (Starlette BackgroundTasks) neither delays
    the response nor holds the worker thread; it completes later on its own loop, and
    the next request on this thread is answered at once."""
    done = threading.Event()
    where: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/quick":
            await respond(send, b"quick")
            return
        await respond(send, b"sent")
        # Held until the test released it: neither response below can have waited for
        # this work (what a timing bound would only suggest).
        await asyncio.to_thread(release.wait, TIMEOUT)
        where.append(threading.get_ident())
        done.set()

    release = threading.Event()
    with serving(app, lifespan="off") as adapter:
        result = call(adapter, make_environ(path="/slow"))
        assert result.body == b"sent"
        assert not done.is_set()
        assert call(adapter, make_environ(path="/quick")).body == b"quick"
        assert not done.is_set()  # the background work really runs in parallel
        release.set()
        assert done.wait(TIMEOUT)
    assert where
    assert where[0] != threading.get_ident()


def test_background_work_is_waited_for_at_shutdown() -> None:
    """A2W-SEND-11 / A2W-LIFE-07: shutdown() waits for work after the response."""
    done = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send)
        await asyncio.sleep(0.3)
        done.set()

    with serving(app, lifespan="off") as adapter:
        call(adapter)
        adapter.shutdown()
        assert done.is_set()


def test_background_work_timeout_cancels(caplog: pytest.LogCaptureFixture) -> None:
    """A2W-SEND-11: work after the response is bounded by background_timeout."""
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send)
        try:
            await asyncio.sleep(600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with serving(app, lifespan="off", background_timeout=0.2) as adapter:
        call(adapter)
        assert cancelled.wait(TIMEOUT)
    assert any("did not finish within 0.2s" in r.getMessage() for r in caplog.records)


def test_background_exception_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A2W-SEND-11: an exception in work after the response is logged, not lost."""
    raised = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send)
        await asyncio.sleep(0.05)
        raised.set()
        raise KeyError("background boom")

    with serving(app, lifespan="off") as adapter:
        assert call(adapter).code == 200
        assert raised.wait(TIMEOUT)
        wait_until(lambda: any("after its response" in r.getMessage() for r in caplog.records))


# --------------------------------------------------------------- errors (point 8)


def test_exception_before_start_is_500_with_exc_info_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The opt-out (propagate_exceptions=False) keeps A2W-SEND-05's old form: an
    exception before http.response.start gives a generic 500
    (no traceback in the body), exc_info goes to start_response, and the traceback is
    logged on "bridgeway" and written to wsgi.errors."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise LookupError("secret detail 42")

    with serving(app, lifespan="off", propagate_exceptions=False) as adapter:
        result = call(adapter)
    assert result.status == "500 Internal Server Error"
    assert b"secret" not in result.body
    assert result.exc_info is not None
    assert isinstance(result.exc_info[1], LookupError)
    records = [r for r in caplog.records if r.name == "bridgeway" and r.levelno == logging.ERROR]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], LookupError)
    assert "Traceback" in result.errors
    assert "LookupError: secret detail 42" in result.errors


def test_exception_after_start_before_body_is_500() -> None:
    """A2W-SEND-04: the status can still change between start and the first body."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        raise RuntimeError("after start")

    with serving(app, lifespan="off", propagate_exceptions=False) as adapter:
        result = call(adapter)
    assert result.code == 500
    assert result.start_calls == 1  # start_response was deferred: called once, for 500
    assert result.exc_info is not None


def test_exception_after_body_propagates(caplog: pytest.LogCaptureFixture) -> None:
    """A2W-SEND-05: after bytes went out, the exception propagates out of the iterator
    (the server aborts the connection and logs it); bridgeway does not log it too."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        for i in range(3):
            await send(body(b"%d" % i, more=True))
        raise ValueError("mid-stream")

    with serving(app, lifespan="off") as adapter:
        result = call(adapter, expect_error=True)
    assert result.code == 200
    assert result.chunks == [b"0", b"1", b"2"]
    assert isinstance(result.error, ValueError)
    assert not [r for r in caplog.records if r.name == "bridgeway" and r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("messages", "rule"),
    [
        pytest.param([], "without sending http.response.start", id="A2W-SEND-06-no-start"),
        pytest.param(
            [START], "after http.response.start without sending a body", id="A2W-SEND-06-no-body"
        ),
    ],
)
def test_returning_without_responding_is_500(
    messages: list[Message], rule: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A2W-SEND-06: an app that returns without responding gets a 500 and a log line
    naming the rule; the next request on the same adapter is served."""
    calls = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            await respond(send)
            return
        for message in messages:
            await send(message)

    with serving(app, lifespan="off") as adapter:
        result = call(adapter)
        assert call(adapter).code == 200
    assert result.code == 500
    assert [r.getMessage() for r in caplog.records if rule in r.getMessage()]


def test_return_mid_stream_aborts() -> None:
    """A2W-SEND-06: start, a body with more_body=True, then return: the iterator raises
    rather than ending a truncated body that looks complete."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send(body(b"part", more=True))

    with serving(app, lifespan="off") as adapter:
        result = call(adapter, expect_error=True)
    assert result.chunks == [b"part"]
    assert isinstance(result.error, ProtocolError)


@pytest.mark.parametrize(
    ("messages", "rule"),
    [
        pytest.param(
            [body(b"x")], "http.response.body before http.response.start", id="body-first"
        ),
        pytest.param([START, START], "a second http.response.start", id="two-starts"),
    ],
)
def test_out_of_order_raises_in_send_and_client_gets_500(
    messages: list[Message], rule: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A2W-SEND-03 / STYLE "errors that name the culprit": an out-of-order message raises
    ProtocolError inside the app's send(), naming the rule; nothing was sent yet, so the
    client gets a 500."""
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            for message in messages:
                await send(message)
        except Exception as exc:
            raised.append(exc)
            raise

    with serving(app, lifespan="off", propagate_exceptions=False) as adapter:
        result = call(adapter)
    assert result.code == 500
    assert len(raised) == 1
    assert isinstance(raised[0], ProtocolError)
    assert rule in str(raised[0])
    assert any(rule in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_message_after_final_body_raises_and_response_is_intact() -> None:
    """A2W-SEND-09: a body after the response completed raises RuntimeError in send()
    (documented choice); the response already produced stays byte-exact."""
    raised: list[BaseException] = []
    done = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"complete")
        try:
            await send(body(b"extra"))
        except RuntimeError as exc:
            raised.append(exc)
        finally:
            done.set()

    with serving(app, lifespan="off") as adapter:
        result = call(adapter)
        assert done.wait(TIMEOUT)
    assert result.body == b"complete"
    assert result.header("Content-Length") == "8"
    assert len(raised) == 1
    assert "after the response was complete" in str(raised[0])


@pytest.mark.parametrize(
    ("message", "error"),
    [
        pytest.param({"type": "http.response.bogus"}, ValueError, id="unknown-type"),
        pytest.param({**START, "status": "200"}, ValueError, id="status-str"),
        pytest.param({**START, "status": 99}, ValueError, id="status-99"),
        pytest.param({**START, "status": 1000}, ValueError, id="status-1000"),
        pytest.param({**START, "status": True}, ValueError, id="status-bool"),
        pytest.param({**START, "headers": [("x", "y")]}, TypeError, id="str-header"),
        pytest.param({**START, "headers": [(b"x", b"a\r\nb")]}, ValueError, id="crlf"),
        pytest.param({**START, "headers": [(b":status", b"200")]}, ValueError, id="pseudo"),
    ],
)
def test_invalid_start_raises_inside_the_app(message: Message, error: type[Exception]) -> None:
    """A2W-SEND-03: an invalid message raises inside the app's send(); the app can catch
    it and still answer; nothing malformed reaches start_response."""
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(message)
        except Exception as exc:
            raised.append(exc)
        await respond(send, b"recovered", status=400)

    with serving(app, lifespan="off", propagate_exceptions=False) as adapter:
        result = call(adapter)
    assert len(raised) == 1
    assert isinstance(raised[0], error)
    assert result.code == 400
    assert result.body == b"recovered"


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (HTTPStatus.NOT_FOUND, "404 Not Found"),
        (HTTPStatus.INTERNAL_SERVER_ERROR, "500 Internal Server Error"),
    ],
)
def test_int_subclass_status_is_a_status(status: HTTPStatus, line: str) -> None:
    """An ``http.HTTPStatus`` is an int: the MCP SDK answers an unknown session with
    ``status=HTTPStatus.NOT_FOUND`` (uvicorn and hypercorn serve it). It was refused as
    "not an int" and the request became a 500 (issue 15 point 4)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"answered", status=status)

    with serving(app, lifespan="off") as adapter:
        result = call(adapter)
    assert (result.status, result.body) == (line, b"answered")
    assert type(result.status) is str


def test_str_body_raises_type_error() -> None:
    """A2W-SEND-03: str instead of bytes for the body raises TypeError in send()."""
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        try:
            await send({"type": "http.response.body", "body": "text"})
        except TypeError as exc:
            raised.append(exc)
        await send(body(b"bytes"))

    with serving(app, lifespan="off") as adapter:
        result = call(adapter)
    assert [type(e) for e in raised] == [TypeError]
    assert result.body == b"bytes"


def test_trailers_without_announcement_raise_protocol_error() -> None:
    """A2W-SEND-03 / EXT-08: http.response.trailers without trailers=True in the start
    (here: before any start) raises ProtocolError in send(), never an internal error."""
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.trailers", "headers": []})
        except Exception as exc:
            raised.append(exc)
        await respond(send)

    with serving(app, lifespan="off") as adapter:
        assert call(adapter).code == 200
    assert [type(e) for e in raised] == [ProtocolError]


# ------------------------------------------------- the same paths in loop_mode="thread"


def test_thread_mode_streaming_disconnect_background_and_errors() -> None:
    """The "thread" loop mode (A2W-LIFE-04) serves the same contract: a streamed response,
    an early close (send raises OSError), work after the final body that does not hold
    the caller, and a 500 with exc_info for an exception before start."""
    finished = threading.Event()
    background = threading.Event()
    release = threading.Event()
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == "/stream":
            await send(START)
            for i in range(3):
                await send(body(b"%d" % i, more=True))
            await send(body(b"end"))
        elif path == "/sse":
            await receive()
            await send(START)
            try:
                while True:
                    await send(body(b"tick", more=True))
            except OSError as exc:
                seen.append(type(exc))
                seen.append(await asyncio.wait_for(receive(), 1.0))
            finally:
                finished.set()
        elif path == "/after":
            await respond(send)
            await asyncio.to_thread(release.wait, TIMEOUT)  # held until answered
            background.set()
        else:
            raise LookupError("boom")

    with serving(app, lifespan="off", propagate_exceptions=False, loop_mode="thread") as adapter:
        assert call(adapter, make_environ(path="/stream")).chunks == [b"0", b"1", b"2", b"end"]
        assert call(adapter, make_environ(path="/sse"), take=2).chunks == [b"tick", b"tick"]
        assert finished.wait(TIMEOUT)
        assert call(adapter, make_environ(path="/after")).code == 200
        assert not background.is_set()
        release.set()
        assert background.wait(TIMEOUT)
        error = call(adapter, make_environ(path="/error"))
    assert seen == [ClientDisconnected, {"type": "http.disconnect"}]
    assert error.code == 500
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], LookupError)


def test_waitress_disconnect_probe_ends_a_silent_wait() -> None:
    """A2W-RECV-07/11: under waitress the adapter polls ``waitress.client_disconnected``
    while the app waits in receive() after the body: a silent long-poll learns that the
    client left (here after ~0.2 s) instead of waiting for ever."""
    gone_at = time.monotonic() + 0.2
    heard: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        began = time.monotonic()
        heard.append(await asyncio.wait_for(receive(), 5.0))
        heard.append(round(time.monotonic() - began, 1))
        await respond(send)

    environ = make_environ()
    environ["waitress.client_disconnected"] = lambda: time.monotonic() > gone_at
    with serving(app, lifespan="off", disconnect_poll_interval=0.05) as adapter:
        call(adapter, environ)
    assert heard[0] == {"type": "http.disconnect"}
    assert heard[1] <= 0.5


def test_disconnect_error_escaping_the_app_is_not_logged_as_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A2W-SEND-08: the OSError that send() raises after an early close, when the app
    lets it bubble out, is not logged as an application error."""
    finished = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(START)
            while True:
                await send(body(b"data", more=True))
        finally:
            finished.set()

    with serving(app, lifespan="off") as adapter:
        call(adapter, take=1)
        assert finished.wait(TIMEOUT)
        # The task has ended; give the loop's driver a moment to log anything it would.
        time.sleep(0.1)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ------------------------------- issue 13: exceptions reach the WSGI caller (A2W-SEND-05)


def _starlette_app(route: str) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    async def crash(request: Any) -> Any:
        return 1 // 0  # ZeroDivisionError, raised from inside a helper's frame below

    async def mid(request: Any) -> Any:
        async def chunks() -> Any:
            yield b"one"
            raise ZeroDivisionError("mid-stream")

        return StreamingResponse(chunks())

    async def fine(request: Any) -> Any:
        return PlainTextResponse("fine")

    return Starlette(
        routes=[Route("/crash", crash), Route("/mid", mid), Route("/fine", fine)]
    ), route


def test_werkzeug_test_client_reraises_the_same_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Differential: werkzeug's test client re-raises a native WSGI app's exception;
    through ASGIToWSGI it re-raises the Starlette app's own ZeroDivisionError (with its
    traceback through the app's frames), and bridgeway logs nothing beside it.
    Starlette's ServerErrorMiddleware sends its 500 and re-raises: that is the
    "after a complete response" case."""
    from werkzeug.test import Client

    def native(environ: Any, start_response: Any) -> Any:
        raise ZeroDivisionError("native")

    with pytest.raises(ZeroDivisionError):
        Client(native).get("/")
    app, _ = _starlette_app("/crash")
    adapter = ASGIToWSGI(app)
    try:
        with pytest.raises(ZeroDivisionError) as raised:
            Client(adapter).get("/crash").get_data()  # the iterator raises after the 500
        frames = [f.name for f in traceback.extract_tb(raised.value.__traceback__)]
        assert "crash" in frames  # the app's own frame: the same exception object
        assert Client(adapter).get("/fine").get_data() == b"fine"  # the loop is fine
    finally:
        adapter.shutdown()
    assert not [r for r in caplog.records if r.name == "bridgeway" and r.levelno >= logging.ERROR]


def test_mid_body_exception_reaches_werkzeug_like_a_native_generators() -> None:
    from werkzeug.test import Client

    def native(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        yield b"one"
        raise ZeroDivisionError("native")

    with pytest.raises(ZeroDivisionError):
        Client(native).get("/").get_data()
    app, _ = _starlette_app("/mid")
    adapter = ASGIToWSGI(app)
    try:
        with pytest.raises(ZeroDivisionError):
            Client(adapter).get("/mid").get_data()
    finally:
        adapter.shutdown()


def test_flask_test_client_and_debugger_see_the_asgi_apps_exception() -> None:
    """Flask's test client re-raises an exception from a mounted ASGI app, and
    werkzeug's DebuggedApplication shows it (its debugger page names it)."""
    from flask import Flask
    from werkzeug.debug import DebuggedApplication
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.test import Client

    app, _ = _starlette_app("/crash")
    adapter = ASGIToWSGI(app)
    flask_app = Flask(__name__)
    flask_app.wsgi_app = DispatcherMiddleware(flask_app.wsgi_app, {"/asgi": adapter})  # type: ignore[method-assign]
    try:
        with pytest.raises(ZeroDivisionError):
            flask_app.test_client().get("/asgi/crash").get_data()
        page = Client(DebuggedApplication(adapter, evalex=False)).get("/crash")
        assert page.status_code == 500
        assert b"ZeroDivisionError" in page.get_data()
    finally:
        adapter.shutdown()


def test_server_error_middleware_500_then_reraise_reaches_the_caller() -> None:
    """Starlette's ServerErrorMiddleware (debug=False) sends a complete 500 and then
    re-raises: the caller gets the whole 500 body, then the exception from the
    iterator, as uvicorn logs it after sending the 500."""
    app, _ = _starlette_app("/crash")
    with serving(app, lifespan="off") as adapter:
        result = call(adapter, make_environ(path="/crash"), expect_error=True)
    assert result.code == 500
    assert b"".join(result.chunks) == b"Internal Server Error"
    assert isinstance(result.error, ZeroDivisionError)


def test_opt_out_answers_500_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    from werkzeug.test import Client

    app, _ = _starlette_app("/crash")
    adapter = ASGIToWSGI(app, propagate_exceptions=False)
    try:
        response = Client(adapter).get("/crash")
        assert response.status_code == 500
        assert response.get_data() == b"Internal Server Error"
    finally:
        adapter.shutdown()
    wait_until(
        lambda: any(
            r.exc_info is not None and isinstance(r.exc_info[1], ZeroDivisionError)
            for r in caplog.records
        )
    )


# ----------------------------- issue 13 point 4: bytes-like bodies, unusual status codes


def test_buffer_bodies_are_served_as_their_raw_bytes() -> None:
    """Any buffer is a body, as uvicorn writes it: a memoryview, a typed array's view
    (its raw bytes), a bytearray the app reuses after send() (copied at send)."""
    typed = array("i", [1, 2])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reused = bytearray(b"abc")
        await send(START)
        await send({"type": "http.response.body", "body": memoryview(b"mv"), "more_body": True})
        await send({"type": "http.response.body", "body": reused, "more_body": True})
        reused[:] = b"XYZ"
        await send({"type": "http.response.body", "body": memoryview(typed), "more_body": True})
        await send({"type": "http.response.body", "body": bytearray(b"!")})

    with serving(app, lifespan="off") as adapter:
        result = call(adapter)
    assert b"".join(result.chunks) == b"mvabc" + typed.tobytes() + b"!"


def test_non_buffer_body_is_refused() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send({"type": "http.response.body", "body": 5})

    with serving(app, lifespan="off") as adapter, pytest.raises(TypeError, match="bytes-like"):
        call(adapter)


@pytest.mark.parametrize(
    ("code", "line"),
    [(123, "123 Unknown"), (599, "599 Unknown"), (999, "999 Unknown"), (418, "418 I'm a Teapot")],
)
def test_unusual_status_codes_get_a_wsgi_status_line(code: int, line: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"odd", status=code)

    with serving(app, lifespan="off") as adapter:
        result = call(adapter)
    assert result.status == line
    assert result.body == b"odd"
