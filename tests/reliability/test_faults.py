"""Fault injection, in-process: the app raising at every stage, the server's ``send()``
raising, the request task cancelled at each await point (WSGIToASGI) or the response
closed at each step (ASGIToWSGI). Each case asserts its documented outcome and that no
thread, task or loop is left behind."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from bridgeway import ASGIToWSGI, WSGIToASGI
from bridgeway._types import Message, Receive, Scope, Send
from tests.reliability.results import record
from tests.reliability.test_bugs import shutdown_closing_leaked_loops
from tests.support import w2a_driver
from tests.support.a2w_driver import call as a2w_call
from tests.support.a2w_driver import make_environ
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

FAULTS: list[dict[str, str]] = []


def _note(adapter: str, fault: str, outcome: str) -> None:
    FAULTS.append({"adapter": adapter, "fault": fault, "outcome": outcome})


def _count() -> int:
    return sum(not t.name.startswith("Trio thread") for t in threading.enumerate())


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    before = _count()
    yield
    deadline = time.monotonic() + 5.0
    while _count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    # trio keeps an idle worker thread cached for a while: trio's, not a leak of ours.
    ours = [t.name for t in threading.enumerate() if not t.name.startswith("Trio thread")]
    assert len(ours) <= before, ours


# --- WSGIToASGI ---------------------------------------------------------------------------


class Body:
    """A response iterable: yields ``chunks``; ``fail_at`` makes the n-th ``next()`` raise;
    ``gate`` makes every ``next()`` wait for the event first."""

    def __init__(
        self,
        chunks: int = 3,
        fail_at: int | None = None,
        fail_close: bool = False,
        gate: threading.Event | None = None,
    ) -> None:
        self.chunks, self.fail_at, self.fail_close, self.gate = chunks, fail_at, fail_close, gate
        self.closes = 0
        self.closed_in: set[int] = set()

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.chunks):
            if self.gate is not None:
                self.gate.wait(10.0)
            if self.fail_at == i:
                raise RuntimeError(f"fault at chunk {i}")
            yield b"chunk%d;" % i

    def close(self) -> None:
        self.closes += 1
        self.closed_in.add(threading.get_ident())
        if self.fail_close:
            raise RuntimeError("fault in close()")


def _wsgi(body: Body | None, *, before_start: bool = False, read: bool = False) -> Any:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if before_start:
            raise RuntimeError("fault before start_response")
        if read:
            environ["wsgi.input"].read(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        assert body is not None
        return body

    return app


def _run_w2a(
    adapter: WSGIToASGI,
    peer: w2a_driver.Peer,
    *,
    backend: str,
    cancel_after: Callable[[], Awaitable[None]] | None = None,
) -> BaseException | None:
    """Serve one request; with ``cancel_after``, cancel the request task once that
    coroutine returns. Returns what the adapter raised, if anything."""
    raised: list[BaseException] = []

    async def main() -> None:
        async def request() -> None:
            try:
                await w2a_driver.call(adapter, w2a_driver.make_scope("POST"), peer)
            except Exception as exc:
                raised.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(request)
            if cancel_after is not None:
                await cancel_after()
                tg.cancel_scope.cancel()
        if backend == "asyncio":
            assert len(asyncio.all_tasks()) == 1, asyncio.all_tasks()

    anyio.run(main, backend=backend)
    pool = adapter.pool()
    wait_until(lambda: pool.busy == 0)
    pool.shutdown(5.0)
    return raised[0] if raised else None


CANCEL_TIMEOUT = 2.0
BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])


PROPAGATE = pytest.mark.parametrize("propagate", [True, False], ids=["propagate", "answer-and-log"])


def _bridgeway_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("bridgeway") and r.exc_info]


@BACKENDS
@PROPAGATE
def test_w2a_app_raises_before_start_response(
    backend: str, propagate: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """By default the fault leaves the ASGI call with nothing sent (the server makes the
    500 and logs it once, as under a2wsgi); opted out, bridgeway answers 500 and logs."""
    peer = w2a_driver.Peer()
    adapter = WSGIToASGI(_wsgi(None, before_start=True), propagate_exceptions=propagate)
    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        raised = _run_w2a(adapter, peer, backend=backend)
    if propagate:
        assert isinstance(raised, RuntimeError)
        assert str(raised) == "fault before start_response"
        assert peer.messages == []  # nothing sent: the server makes the 500
        assert _bridgeway_errors(caplog) == []
    else:
        assert raised is None
        assert peer.status == 500
        assert b"fault" not in peer.body
        assert _bridgeway_errors(caplog)
    outcome = "raised, nothing sent" if propagate else "500, logged"
    _note("WSGIToASGI", f"app raises before start_response ({backend}, {propagate=})", outcome)


@BACKENDS
@PROPAGATE
def test_w2a_app_raises_before_first_chunk(backend: str, propagate: bool) -> None:
    body = Body(fail_at=0)
    peer = w2a_driver.Peer()
    raised = _run_w2a(
        WSGIToASGI(_wsgi(body), propagate_exceptions=propagate), peer, backend=backend
    )
    if propagate:
        assert raised is not None
        assert peer.messages == []  # nothing sent: the server makes the 500
    else:
        assert raised is None
        assert peer.status == 500
    assert body.closes == 1
    outcome = "raised, nothing sent" if propagate else "500"
    _note(
        "WSGIToASGI",
        f"iterable raises before its first chunk ({backend}, {propagate=})",
        f"{outcome}, closed once",
    )


@BACKENDS
def test_w2a_app_raises_mid_stream(backend: str) -> None:
    body = Body(fail_at=2)
    peer = w2a_driver.Peer()
    raised = _run_w2a(WSGIToASGI(_wsgi(body)), peer, backend=backend)
    # The headers went out: the response is aborted, never completed.
    assert not peer.complete
    assert peer.body == b"chunk0;chunk1;"
    assert body.closes == 1
    _note(
        "WSGIToASGI",
        f"iterable raises mid-stream ({backend})",
        f"aborted after 2 chunks ({type(raised).__name__ if raised else 'no exception'}),"
        " closed once",
    )


@BACKENDS
@PROPAGATE
def test_w2a_close_raises(backend: str, propagate: bool, caplog: pytest.LogCaptureFixture) -> None:
    """close() raising after a whole response: by default the exception leaves the ASGI
    call once the response was sent (a2wsgi's behaviour); opted out, it is logged."""
    body = Body(fail_close=True)
    peer = w2a_driver.Peer()
    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        raised = _run_w2a(
            WSGIToASGI(_wsgi(body), propagate_exceptions=propagate), peer, backend=backend
        )
    assert body.closes == 1
    assert peer.complete
    if propagate:
        assert raised is not None
        assert _bridgeway_errors(caplog) == []
    else:
        assert raised is None
        assert _bridgeway_errors(caplog)
    _note(
        "WSGIToASGI",
        f"close() raises ({backend}, {propagate=})",
        f"body complete, {'raised' if propagate else 'logged'}, closed once",
    )


@BACKENDS
@pytest.mark.parametrize("after", [0, 1, 2])
def test_w2a_server_send_raises(backend: str, after: int) -> None:
    body = Body(chunks=5)
    peer = w2a_driver.Peer(raise_after=after)
    raised = _run_w2a(WSGIToASGI(_wsgi(body)), peer, backend=backend)
    assert body.closes == 1
    assert peer.body_messages == after
    _note(
        "WSGIToASGI",
        f"server send() raises OSError after {after} body messages ({backend})",
        f"app stopped, closed once{', ' + type(raised).__name__ if raised else ''}",
    )


@BACKENDS
@pytest.mark.parametrize(
    "point", ["queued-for-thread", "app-running", "reading-body", "in-send", "between-chunks"]
)
def test_w2a_request_task_cancelled(backend: str, point: str) -> None:
    gate = threading.Event()
    body = Body(chunks=3, gate=gate if point in ("app-running", "between-chunks") else None)
    blocker_release = threading.Event()
    # A small cancel_timeout: it bounds how long a cancel may wait for the thread.
    adapter = WSGIToASGI(
        _wsgi(body, read=point == "reading-body"), max_threads=1, cancel_timeout=CANCEL_TIMEOUT
    )
    sent_once = threading.Event()

    async def on_send(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            sent_once.set()
            if point == "in-send":
                await anyio.sleep(30)  # the server is slow to take the chunk

    peer = w2a_driver.Peer([b"x" * 5], truncate=True, hold=True, on_send=on_send)

    if point == "queued-for-thread":
        # Occupy the only worker thread, so the request waits in the queue.
        def occupy() -> None:
            blocker_release.wait(10.0)

        adapter.pool().submit(occupy)

    async def cancel_after() -> None:
        if point == "queued-for-thread":
            await anyio.sleep(0.1)
        elif point == "app-running":
            await anyio.sleep(0.1)  # the app waits on the gate, before its first chunk
        elif point == "reading-body":
            await w2a_driver.wait_for(lambda: peer.receive_calls >= 2)
        elif point in ("in-send", "between-chunks"):
            if point == "between-chunks":
                gate.set()
                await w2a_driver.wait_for(sent_once.is_set)
                gate.clear()
            else:
                await w2a_driver.wait_for(sent_once.is_set)

    started = time.monotonic()
    try:
        raised = _run_w2a_cancel(adapter, peer, backend, cancel_after, gate, blocker_release)
    finally:
        gate.set()
        blocker_release.set()
    took = time.monotonic() - started
    if point in ("queued-for-thread", "reading-body"):
        # The app never ran, or its read raised ClientDisconnected before it returned
        # an iterable: nothing to close.
        assert body.closes == 0, point
        what = "never ran" if point == "queued-for-thread" else "read raised ClientDisconnected"
    else:
        assert body.closes == 1, point
        what = "closed once"
    assert took < CANCEL_TIMEOUT + 3.0
    _note(
        "WSGIToASGI",
        f"request task cancelled: {point} ({backend})",
        f"{what}, pool idle, {took:.2f} s{', ' + type(raised).__name__ if raised else ''}",
    )


def _run_w2a_cancel(
    adapter: WSGIToASGI,
    peer: w2a_driver.Peer,
    backend: str,
    cancel_after: Callable[[], Awaitable[None]],
    gate: threading.Event,
    blocker_release: threading.Event,
) -> BaseException | None:
    async def after_then_release() -> None:
        await cancel_after()
        # A thread blocked in the app is released right after the cancel, as an app
        # reaches its next chunk boundary.
        threading.Timer(0.2, gate.set).start()
        threading.Timer(0.2, blocker_release.set).start()

    result = _run_w2a(adapter, peer, backend=backend, cancel_after=after_then_release)
    time.sleep(0.25)  # let the two timers end (the thread-leak check counts them)
    return result


@BACKENDS
def test_w2a_lifespan_hooks_raise(backend: str) -> None:
    def boom() -> None:
        raise RuntimeError("hook fault")

    sent: list[Message] = []

    async def main() -> None:
        for hooks in ({"on_startup": [boom]}, {"on_shutdown": [boom]}):
            adapter = WSGIToASGI(_wsgi(None), **hooks)  # type: ignore[arg-type]
            messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

            async def receive(messages: Iterator[Message] = messages) -> Message:
                return next(messages)

            async def send(message: Message) -> None:
                sent.append(message)

            with anyio.fail_after(10):
                await adapter({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

    anyio.run(main, backend=backend)
    kinds = [m["type"] for m in sent]
    assert kinds == [
        "lifespan.startup.failed",
        "lifespan.startup.complete",
        "lifespan.shutdown.failed",
    ]
    _note("WSGIToASGI", f"on_startup raises ({backend})", "lifespan.startup.failed, logged")
    _note("WSGIToASGI", f"on_shutdown raises ({backend})", "lifespan.shutdown.failed, logged")


# --- ASGIToWSGI ---------------------------------------------------------------------------


def _asgi(stage: str) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            if stage == "lifespan-startup":
                raise RuntimeError("fault in lifespan startup")
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
            if stage == "lifespan-shutdown":
                raise RuntimeError("fault in lifespan shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        if stage == "before-start":
            raise RuntimeError("fault before http.response.start")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if stage == "before-body":
            raise RuntimeError("fault before the first body")
        for i in range(3):
            if stage == "mid-stream" and i == 2:
                raise RuntimeError("fault mid-stream")
            await send({"type": "http.response.body", "body": b"c%d;" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        if stage == "after-response":
            raise RuntimeError("fault after the response")

    return app


def _a2w_leak_check(adapter: ASGIToWSGI, threads_before: int) -> None:
    assert adapter.loops_created <= 1
    adapter.shutdown(5.0)
    wait_until(lambda: threading.active_count() <= threads_before)


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ("before-start", "500"),
        ("before-body", "500"),
        ("mid-stream", "error from the iterator after 2 chunks"),
        ("after-response", "complete"),
    ],
)
def test_a2w_app_raises_answer_and_log(
    stage: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    """propagate_exceptions=False: bridgeway answers (500 with exc_info, or an aborted
    iterator) and logs the traceback itself."""
    threads_before = threading.active_count()
    adapter = ASGIToWSGI(_asgi(stage), lifespan="off", propagate_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        result = a2w_call(adapter, make_environ(), expect_error=True)
        if stage == "after-response":
            wait_until(lambda: any(r.exc_info for r in caplog.records))
    if expected == "500":
        assert result.code == 500
        assert result.exc_info is not None
        assert b"fault" not in result.body
    elif stage == "mid-stream":
        assert result.error is not None
        assert result.body == b"c0;c1;"
    else:
        assert result.body == b"c0;c1;c2;"
    assert any(r.exc_info for r in caplog.records)
    _a2w_leak_check(adapter, threads_before)
    _note("ASGIToWSGI", f"app raises {stage} (propagate_exceptions=False)", f"{expected}, logged")


@pytest.mark.parametrize("stage", ["before-start", "before-body", "mid-stream", "after-response"])
def test_a2w_app_raises_propagates(stage: str, caplog: pytest.LogCaptureFixture) -> None:
    """By default the fault reaches the WSGI side as a native app's would: from the app
    call before any body byte, from the iterator after; bridgeway logs none of it."""
    threads_before = threading.active_count()
    adapter = ASGIToWSGI(_asgi(stage), lifespan="off")
    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        if stage in ("before-start", "before-body"):
            with pytest.raises(RuntimeError, match="fault"):
                a2w_call(adapter, make_environ(), expect_error=True)
            outcome = "raised from the app call"
        elif stage == "mid-stream":
            result = a2w_call(adapter, make_environ(), expect_error=True)
            assert isinstance(result.error, RuntimeError)
            assert result.body == b"c0;c1;"
            outcome = "raised from the iterator"
        else:
            # After a complete response: raised from the iterator when the app fails
            # within the few loop steps bridgeway waits, else logged once at close().
            result = a2w_call(adapter, make_environ(), expect_error=True)
            assert result.body == b"c0;c1;c2;"
            if result.error is None:
                wait_until(lambda: len(_bridgeway_errors(caplog)) >= 1)
            outcome = "raised from the iterator, or logged once at close()"
    # One traceback in all: what bridgeway logged, plus what it raised.
    raised = 0 if stage not in ("mid-stream", "after-response") else int(result.error is not None)
    expected_logs = 1 - raised if stage == "after-response" else 0
    assert len(_bridgeway_errors(caplog)) == expected_logs
    _a2w_leak_check(adapter, threads_before)
    _note("ASGIToWSGI", f"app raises {stage}", outcome)


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_a2w_lifespan_startup_raises(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    threads_before = threading.active_count()
    adapter = ASGIToWSGI(_asgi("lifespan-startup"), lifespan=mode)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        result = a2w_call(adapter, make_environ(), expect_error=True)
    _a2w_leak_check(adapter, threads_before)
    assert result.code == (500 if mode == "on" else 200)
    _note("ASGIToWSGI", f"lifespan startup raises (lifespan={mode!r})", str(result.code))


def test_a2w_lifespan_shutdown_raises(caplog: pytest.LogCaptureFixture) -> None:
    threads_before = threading.active_count()
    adapter = ASGIToWSGI(_asgi("lifespan-shutdown"), lifespan="on")
    result = a2w_call(adapter, make_environ())
    assert result.code == 200
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        _a2w_leak_check(adapter, threads_before)
    assert time.monotonic() - started < 5.0
    _note("ASGIToWSGI", "lifespan shutdown raises", "shutdown() returns, loop closed")


@pytest.mark.parametrize("take", [0, 1, 2])
@pytest.mark.parametrize("await_point", ["send", "sleep", "receive"])
def test_a2w_response_closed_early(take: int, await_point: str) -> None:
    """The server closes the iterator (its client left) while the app awaits send(),
    a sleep, or receive(): the app call finishes, nothing is left running."""
    threads_before = threading.active_count()
    finished = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for i in range(100):
                await send({"type": "http.response.body", "body": b"c%d;" % i, "more_body": True})
                if await_point == "sleep":
                    await asyncio.sleep(0.01)
                elif await_point == "receive" and i >= take:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
        except OSError:
            return
        finally:
            finished.set()

    adapter = ASGIToWSGI(app, lifespan="off", disconnect_grace=1.0)
    started = time.monotonic()
    result = a2w_call(adapter, make_environ(), take=take)
    finished.wait(5.0)
    assert finished.is_set()
    assert len(result.chunks) == take
    _a2w_leak_check(adapter, threads_before)
    _note(
        "ASGIToWSGI",
        f"response closed after {take} chunks, app awaiting {await_point}",
        f"app call finished in {time.monotonic() - started:.2f} s",
    )


def test_a2w_start_response_raises() -> None:
    threads_before = threading.active_count()
    finished = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x"})
        finally:
            finished.set()

    def start_response(*args: Any) -> Any:
        raise OSError("the server failed in start_response")

    adapter = ASGIToWSGI(app, lifespan="off")
    try:
        with pytest.raises(OSError, match="start_response"):
            adapter(make_environ(), start_response)
        assert finished.wait(5.0)
    finally:
        shutdown_closing_leaked_loops(adapter)  # BUG-2 (test_bugs.py) leaks this loop
    wait_until(lambda: threading.active_count() <= threads_before)
    _note("ASGIToWSGI", "server start_response raises", "the error reaches the server; app done")


def test_zz_record_faults() -> None:
    record("faults", "fault-injection", {"faults": FAULTS, "count": len(FAULTS)})
