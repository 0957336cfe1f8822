"""A2W-LIFE: lifespan under ASGIToWSGI, once per loop, with per-request state copies
(A2W-LIFE-01, A2W-LIFE-03) and A2W-SCOPE-12 (``state`` is a shallow copy)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from bridgeway._types import Message, Receive, Scope, Send
from tests.support.a2w_driver import call, respond, serving
from tests.support.waiting import TIMEOUT


class LifespanApp:
    """An ASGI app with a scripted lifespan that records every event in order.

    :param startup: ``"complete"``, ``"failed"``, ``"raise"``, ``"hang"`` or
        ``"unsupported"`` (raises on the lifespan scope like a plain http-only app).
    :param shutdown: ``"complete"``, ``"failed"`` or ``"hang"``.
    """

    def __init__(self, startup: str = "complete", shutdown: str = "complete") -> None:
        self.startup = startup
        self.shutdown = shutdown
        self.events: list[tuple[str, int]] = []  # (event, id(loop))
        self.states: list[dict[str, Any] | None] = []
        self.handled = 0
        self.lock = threading.Lock()

    def _log(self, event: str) -> None:
        with self.lock:
            self.events.append((event, id(asyncio.get_running_loop())))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        self.handled += 1
        self._log("request")
        state = scope.get("state")
        self.states.append(None if state is None else dict(state))
        if state is not None:
            state["added-by-request"] = self.handled
            if "pool" in state:
                state["pool"].append(self.handled)
        await respond(send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.startup == "unsupported":
            raise ValueError("this app only speaks http")
        message = await receive()
        assert message["type"] == "lifespan.startup"
        self._log("startup")
        if self.startup == "raise":
            raise RuntimeError("db down (raised)")
        if self.startup == "hang":
            await asyncio.sleep(600)
        if self.startup == "failed":
            await send({"type": "lifespan.startup.failed", "message": "db down"})
            return
        scope["state"]["pool"] = []
        scope["state"]["lock"] = asyncio.Lock()
        scope["state"]["n"] = 0
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        self._log("shutdown")
        if self.shutdown == "hang":
            await asyncio.sleep(600)
        if self.shutdown == "failed":
            await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})
            return
        await send({"type": "lifespan.shutdown.complete"})


def _messages(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bridgeway" and r.levelno == level and text in r.getMessage()
    ]


def test_once_per_loop_before_first_request() -> None:
    """A2W-LIFE-01: one startup per loop, on that loop, finished before its first request;
    later requests on the loop run no new startup; shutdown() runs lifespan shutdown."""
    app = LifespanApp()
    with serving(app) as adapter:
        for _ in range(5):
            assert call(adapter).code == 200
        assert [e for e, _ in app.events] == ["startup"] + ["request"] * 5
        assert len({loop for _, loop in app.events}) == 1
    assert app.events[-1][0] == "shutdown"
    assert app.events[-1][1] == app.events[0][1]


def test_one_lifespan_per_concurrent_loop() -> None:
    """A2W-LIFE-01/03: two loops in flight at once each get their own startup, on their
    own loop, and their own state; each request uses its loop's state and lock."""
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    app = LifespanApp()
    used: list[tuple[int, int]] = []

    async def both(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            barrier.wait()  # each thread owns its loop: blocking here blocks only it
            async with scope["state"]["lock"]:  # a loop-bound lock from startup
                used.append((id(scope["state"]["pool"]), id(asyncio.get_running_loop())))
        await app(scope, receive, send)

    with serving(both) as adapter:
        threads = [threading.Thread(target=call, args=(adapter,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert adapter.loops_created == 2
    startups = [loop for event, loop in app.events if event == "startup"]
    requests = [loop for event, loop in app.events if event == "request"]
    shutdowns = [loop for event, loop in app.events if event == "shutdown"]
    assert len(startups) == 2
    assert sorted(startups) == sorted(requests) == sorted(shutdowns)
    assert len({pool for pool, _ in used}) == 2  # a state per loop


def test_state_is_a_shallow_copy_per_request() -> None:
    """A2W-SCOPE-12 / A2W-LIFE-03: each request gets a shallow copy of its loop's state:
    a key a request adds is gone next time; a mutable object is the same object."""
    app = LifespanApp()
    with serving(app) as adapter:
        call(adapter)
        call(adapter)
        call(adapter)
    first, second, third = app.states
    assert first is not None
    assert second is not None
    assert third is not None
    assert "added-by-request" not in second
    assert "added-by-request" not in third
    assert first["pool"] is second["pool"] is third["pool"]
    assert first["pool"] == [1, 2, 3]  # every request appended to the same list
    assert set(second) == {"pool", "lock", "n"}


def test_startup_failure_gives_500_without_calling_the_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A2W-LIFE-05: lifespan.startup.failed is logged once per loop; requests on that
    loop get a 500 and the HTTP handler is never called."""
    app = LifespanApp(startup="failed")
    with caplog.at_level(logging.INFO, logger="bridgeway"), serving(app) as adapter:
        codes = [call(adapter).code for _ in range(3)]
    assert codes == [500, 500, 500]
    assert app.handled == 0
    assert len(_messages(caplog, logging.ERROR, "db down")) == 1
    assert [e for e, _ in app.events] == ["startup"]  # no shutdown after a failure


@pytest.mark.parametrize(
    ("mode", "expected"),
    [pytest.param("on", 500, id="A2W-LIFE-06-on"), pytest.param("auto", 200, id="auto")],
)
def test_startup_raising(mode: str, expected: int, caplog: pytest.LogCaptureFixture) -> None:
    """A2W-LIFE-06: with lifespan="on" an exception at startup is a failure (500, handler
    not called); with "auto" it means "unsupported" and requests are served."""
    app = LifespanApp(startup="raise")
    with caplog.at_level(logging.INFO, logger="bridgeway"), serving(app, lifespan=mode) as adapter:
        codes = [call(adapter).code for _ in range(3)]
    assert codes == [expected] * 3
    assert app.handled == (3 if expected == 200 else 0)
    if mode == "on":
        assert len(_messages(caplog, logging.ERROR, "startup failed")) == 1
        assert app.states == []
    else:
        assert app.states == [None, None, None]  # no state key without lifespan


def test_app_without_lifespan_is_served_and_logged_once_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A2W-LIFE-06: an app that raises on the lifespan scope is served normally; one
    info line per loop, no error and no traceback per request; no ``state`` key."""
    app = LifespanApp(startup="unsupported")
    with caplog.at_level(logging.DEBUG, logger="bridgeway"), serving(app) as adapter:
        codes = [call(adapter).code for _ in range(4)]
    assert codes == [200] * 4
    assert app.handled == 4
    assert app.states == [None] * 4
    infos = _messages(caplog, logging.INFO, "does not support lifespan")
    assert len(infos) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_app_returning_from_lifespan_is_unsupported(caplog: pytest.LogCaptureFixture) -> None:
    """A2W-LIFE-06: returning without answering lifespan.startup also means unsupported."""
    served: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        served.append(scope)
        await respond(send)

    with caplog.at_level(logging.INFO, logger="bridgeway"), serving(app) as adapter:
        assert call(adapter).code == 200
        assert call(adapter).code == 200
    assert len(_messages(caplog, logging.INFO, "does not support lifespan")) == 1
    assert all("state" not in scope for scope in served)


def test_lifespan_off_never_calls_lifespan() -> None:
    """A2W-LIFE-06: lifespan="off" sends no lifespan scope at all."""
    app = LifespanApp()
    with serving(app, lifespan="off") as adapter:
        assert call(adapter).code == 200
    assert [e for e, _ in app.events] == ["request"]
    assert app.states == [None]


def test_startup_timeout_gives_500(caplog: pytest.LogCaptureFixture) -> None:
    """A2W-LIFE-12: a startup that never completes is bounded by startup_timeout and
    then handled as a failure; the worker thread is not blocked for ever."""
    app = LifespanApp(startup="hang")
    with serving(app, startup_timeout=0.3) as adapter:
        began = time.monotonic()
        first = call(adapter)
        elapsed = time.monotonic() - began
        second = call(adapter)
    assert first.code == 500
    assert second.code == 500
    assert 0.25 <= elapsed < 3.0
    assert app.handled == 0
    assert len(_messages(caplog, logging.ERROR, "did not complete within 0.3s")) == 1


def test_shutdown_waits_for_shutdown_complete() -> None:
    """A2W-LIFE-07: shutdown() sends lifespan.shutdown on every live loop and waits for
    the handler (here it does async work first)."""
    done: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await asyncio.sleep(0.2)
            done.append("flushed")
            await send({"type": "lifespan.shutdown.complete"})
            return
        await respond(send)

    with serving(app) as adapter:
        call(adapter)
        assert done == []
        adapter.shutdown()
        assert done == ["flushed"]


def test_shutdown_is_bounded_by_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    """A2W-LIFE-07: a shutdown handler that hangs is given shutdown_timeout, logged, and
    cancelled; shutdown() returns and the loop is closed."""
    app = LifespanApp(shutdown="hang")
    with serving(app, shutdown_timeout=0.3) as adapter:
        call(adapter)
        began = time.monotonic()
        adapter.shutdown()
        elapsed = time.monotonic() - began
    assert elapsed < 3.0
    assert [e for e, _ in app.events] == ["startup", "request", "shutdown"]
    assert len(_messages(caplog, logging.ERROR, "shutdown did not complete")) == 1


def test_shutdown_failed_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A2W-LIFE-07: lifespan.shutdown.failed is logged with its message."""
    app = LifespanApp(shutdown="failed")
    with serving(app) as adapter:
        call(adapter)
    assert len(_messages(caplog, logging.ERROR, "flush failed")) == 1


def test_two_adapters_have_separate_lifespans_and_state() -> None:
    """A2W-LIFE-10: two adapters in one process each run their own lifespan with their
    own state, and shut down independently."""
    seen: dict[str, list[set[str]]] = {"a": [], "b": []}

    def make(name: str) -> Any:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                message: Message = await receive()
                scope["state"][name] = True
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
                assert message["type"] == "lifespan.shutdown"
                await send({"type": "lifespan.shutdown.complete"})
                return
            seen[name].append(set(scope["state"]))
            await respond(send)

        return app

    with serving(make("a")) as first, serving(make("b")) as second:
        call(first)
        call(second)
        first.shutdown()
        assert call(second).code == 200  # the other adapter is unaffected
    assert seen == {"a": [{"a"}], "b": [{"b"}, {"b"}]}


def test_loop_bound_state_in_four_threads() -> None:
    """A2W-LIFE-03: an asyncio.Lock and an httpx.AsyncClient made at startup are only
    used on their own loop: 4 threads x 200 requests, no cross-loop error."""
    import httpx

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        return httpx.Response(200, text="pong")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            state = scope["state"]
            state["loop"] = asyncio.get_running_loop()
            state["lock"] = asyncio.Lock()
            state["client"] = httpx.AsyncClient(transport=httpx.MockTransport(handler))
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await state["client"].aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        state = scope["state"]
        if state["loop"] is not asyncio.get_running_loop():
            raise AssertionError("state from another loop")
        async with state["lock"]:
            reply = await state["client"].get("http://upstream/ping")
        await respond(send, reply.content)

    failures: list[str] = []

    def worker(adapter: Any) -> None:
        for _ in range(200):
            result = call(adapter)
            if result.body != b"pong":
                failures.append(result.status)

    with serving(app) as adapter:
        threads = [threading.Thread(target=worker, args=(adapter,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert 1 <= adapter.loops_created <= 4
    assert failures == []
