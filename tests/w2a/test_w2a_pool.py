"""The bounded worker pool (W2A-RESP-18, W2A-SCOPE-05)."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterable

import anyio
import anyio.lowlevel
import pytest

from bridgeway import WSGIToASGI
from bridgeway._types import Environ, StartResponse
from bridgeway.wsgi_to_asgi import DEFAULT_MAX_THREADS
from tests.support.w2a_driver import Peer, call, make_scope, wait_for

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


class Gate:
    """A WSGI app whose requests block until released; tracks how many run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.started = 0
        self.release = threading.Event()
        self.threads: set[int] = set()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        with self.lock:
            self.running += 1
            self.started += 1
            self.peak = max(self.peak, self.running)
            self.threads.add(threading.get_ident())
        try:
            self.release.wait(10)
        finally:
            with self.lock:
                self.running -= 1
        start_response("200 OK", [])
        return [b"ok"]


def test_default_limit_is_documented() -> None:
    adapter = WSGIToASGI(Gate())
    assert adapter.max_threads == DEFAULT_MAX_THREADS == 40
    assert WSGIToASGI.__doc__ is not None
    assert "default 40" in WSGIToASGI.__doc__
    with pytest.raises(ValueError, match="max_threads"):
        WSGIToASGI(Gate(), max_threads=0)


@pytest.mark.parametrize("limit", [pytest.param(1, id="limit-1"), pytest.param(3, id="limit-3")])
async def test_limit_is_respected_and_excess_requests_wait(limit: int) -> None:
    app = Gate()
    adapter = WSGIToASGI(app, max_threads=limit)
    peers = [Peer() for _ in range(limit + 4)]
    async with anyio.create_task_group() as tg:
        for peer in peers:
            tg.start_soon(call, adapter, make_scope(), peer)
        await wait_for(lambda: app.started == limit)
        # the others are queued, not refused and not running (a short window in which
        # a pool without a limit would have started them)
        await anyio.sleep(0.05)
        assert app.started == limit
        assert all(peer.messages == [] for peer in peers)
        app.release.set()
    assert app.peak == limit
    assert app.started == len(peers)
    assert [peer.status for peer in peers] == [200] * len(peers)
    assert len(app.threads) <= limit
    assert adapter.pool().busy == 0


async def test_context_variables_visible_in_app() -> None:
    seen: list[str | None] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(request_id.get(None))
        start_response("200 OK", [])
        return [b""]

    adapter = WSGIToASGI(app)
    for value in ("first", "second"):
        token = request_id.set(value)
        try:
            await call(adapter)
        finally:
            request_id.reset(token)
    assert seen == ["first", "second"]


async def test_context_changes_in_app_do_not_leak_back() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request_id.set("set by the app")
        start_response("200 OK", [])
        return [b""]

    token = request_id.set("task")
    try:
        await call(WSGIToASGI(app))
        assert request_id.get() == "task"
    finally:
        request_id.reset(token)


async def test_app_never_runs_on_the_loop_and_loop_stays_responsive() -> None:
    app = Gate()
    adapter = WSGIToASGI(app, max_threads=2)
    loop_thread = threading.get_ident()
    ticks = 0
    peer = Peer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, adapter, make_scope(), peer)
        await wait_for(lambda: app.started == 1)
        # the app blocks its thread; the event loop keeps running other tasks
        with anyio.fail_after(1):
            for _ in range(10):
                await anyio.lowlevel.checkpoint()
                ticks += 1
        app.release.set()
    assert ticks == 10
    assert loop_thread not in app.threads
    assert peer.status == 200


async def test_threads_are_reused() -> None:
    threads: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        threads.append(threading.get_ident())
        start_response("200 OK", [])
        return [b"x"]

    adapter = WSGIToASGI(app, max_threads=4)
    for _ in range(20):
        await call(adapter)
    assert len(set(threads)) == 1  # sequential requests share one warm thread
    assert adapter.pool().thread_count <= 4


def test_no_thread_made_at_construction() -> None:
    """W2A-SCOPE-05: nothing that a fork would break is made in __init__."""
    before = set(threading.enumerate())
    adapter = WSGIToASGI(Gate(), max_threads=8)
    assert set(threading.enumerate()) == before
    assert adapter._pool is None


async def test_cancelled_while_queued_never_runs_the_app() -> None:
    app = Gate()
    adapter = WSGIToASGI(app, max_threads=1)
    first, second = Peer(), Peer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, adapter, make_scope(), first)
        await wait_for(lambda: app.started == 1)
        # cancelling a queued request is prompt: it does not wait for a free thread
        with anyio.fail_after(2):
            async with anyio.create_task_group() as inner:
                inner.start_soon(call, adapter, make_scope(), second)
                await wait_for(lambda: adapter.pool().busy == 2)  # queued behind the first
                inner.cancel_scope.cancel()
        app.release.set()
    assert first.status == 200
    assert second.messages == []
    third = await call(adapter)
    assert third.status == 200
    assert app.started == 2  # the cancelled request never reached the app
    await wait_for(lambda: adapter.pool().busy == 0)
