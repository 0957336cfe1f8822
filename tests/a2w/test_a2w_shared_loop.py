"""``loop_mode="shared"``: one event loop per process, one lifespan, every request a task
on it (issue 15 point 4: an MCP server inside a WSGI app).

The apps here model what the MCP SDK's streamable-HTTP app does: its lifespan enters a
session manager that refuses a second ``run()`` and keeps a task group open; requests
are answered by tasks of that task group. The default ``inline`` mode (a loop per
concurrent request, a lifespan per loop) cannot serve such an app: the second loop's
lifespan fails.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from bridgeway import ASGIToWSGI
from bridgeway._types import Receive, Scope, Send
from tests.support.a2w_driver import call, make_environ, respond, serving, ticker_app
from tests.support.waiting import TIMEOUT, wait_until


class RunOnce:
    """A lifespan that may run once per app object (as MCP's ``session_manager.run()``):
    startup opens a worker task that answers the requests through a queue, so a
    request is served only if *this* lifespan's worker runs (on the request's loop)."""

    def __init__(self, overlap: int = 1) -> None:
        self.startups = 0
        self.shutdowns = 0
        self.queue: asyncio.Queue[tuple[str, asyncio.Future[str]]] | None = None
        self.barrier = threading.Barrier(overlap, timeout=TIMEOUT)
        self.loops: set[int] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            if self.startups:
                await send({"type": "lifespan.startup.failed", "message": "run() called twice"})
                return
            self.startups += 1
            queue = self.queue = asyncio.Queue()

            async def worker() -> None:
                while True:
                    path, answer = await queue.get()
                    answer.set_result(f"{path} served by the lifespan's worker")

            task = asyncio.get_running_loop().create_task(worker())
            await send({"type": "lifespan.startup.complete"})
            await receive()
            task.cancel()
            self.shutdowns += 1
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.queue is not None, "a request before the lifespan started"
        self.loops.add(id(asyncio.get_running_loop()))
        # Every request is in flight at once: N requests need N WSGI threads.
        await asyncio.to_thread(self.barrier.wait)
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        await self.queue.put((scope["path"], answer))
        await respond(send, (await answer).encode())


def concurrently(adapter: ASGIToWSGI, count: int) -> list[tuple[int, bytes]]:
    """``count`` requests at once, each from a WSGI thread of its own."""
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        result = call(adapter, make_environ(path=f"/r{n}"))
        with lock:
            results.append((result.code, result.body))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a request never ended"
    return sorted(results)


def test_shared_mode_serves_concurrent_requests_from_one_lifespan() -> None:
    app = RunOnce(overlap=4)
    with serving(app, loop_mode="shared", lifespan="on") as adapter:
        results = concurrently(adapter, 4)
        assert results == [
            (200, f"/r{n} served by the lifespan's worker".encode()) for n in range(4)
        ]
        assert adapter.loops_created == 1
        assert len(app.loops) == 1
        assert app.startups == 1
    assert app.shutdowns == 1


def test_inline_mode_runs_a_lifespan_per_loop_and_says_what_to_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The default mode, for contrast (what main did with the MCP app): two requests at
    once make two loops, the second loop's lifespan fails, its request is answered
    500, and the log names ``loop_mode='shared'``."""
    app = RunOnce(overlap=1)
    hold = threading.Event()
    first_started = threading.Event()

    async def holding(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/hold":
            first_started.set()
            await asyncio.to_thread(hold.wait, TIMEOUT)
        await app(scope, receive, send)

    with (
        caplog.at_level(logging.ERROR, logger="bridgeway"),
        serving(holding, lifespan="on") as adapter,
    ):
        held = threading.Thread(target=lambda: call(adapter, make_environ(path="/hold")))
        held.start()
        assert first_started.wait(TIMEOUT)
        second = call(adapter, make_environ(path="/second"))
        hold.set()
        held.join(TIMEOUT)
        assert adapter.loops_created == 2
    assert second.code == 500
    assert app.startups == 1
    assert "loop_mode='shared'" in caplog.text


def test_shared_mode_keeps_lifespan_tasks_running_between_requests() -> None:
    """As in thread mode (a session's idle timer, an SSE keep-alive): tasks keep running
    while no request does."""
    ticks: list[float] = []
    with serving(ticker_app(ticks, 0.05), loop_mode="shared") as adapter:
        first = int(call(adapter).body)
        wait_until(lambda: len(ticks) >= first + 5)
        assert int(call(adapter).body) >= first + 5


def test_shared_mode_shutdown_ends_a_long_response_through_the_lifespan() -> None:
    """A response that only the lifespan shutdown ends (an MCP session's GET stream):
    ``shutdown()`` waits for running requests (bounded), then runs the lifespan
    shutdown, which ends the stream; the WSGI thread gets its final chunk."""
    stop: asyncio.Event | None = None
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal stop
        if scope["type"] == "lifespan":
            await receive()
            stop = asyncio.Event()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            events.append("lifespan.shutdown")
            stop.set()
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert stop is not None
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"open\n", "more_body": True})
        await stop.wait()
        await send({"type": "http.response.body", "body": b"closed by shutdown\n"})

    adapter = ASGIToWSGI(app, loop_mode="shared")
    bodies: list[bytes] = []
    stream = threading.Thread(target=lambda: bodies.append(call(adapter).body))
    stream.start()
    wait_until(lambda: stop is not None and adapter.loops_created == 1)
    started = time.monotonic()
    adapter.shutdown(timeout=0.5)  # waits 0.5 s for the stream, then shuts down
    stream.join(TIMEOUT)
    assert not stream.is_alive()
    assert bodies == [b"open\nclosed by shutdown\n"]
    assert events == ["lifespan.shutdown"]
    assert time.monotonic() - started < 3.0


def test_shutdown_cancels_a_task_that_never_ends_at_once() -> None:
    """A task the app (or a library) left running that never ends by itself, like
    sse-starlette's shutdown watcher (it polls for uvicorn's exit flag for ever), is
    cancelled right after the lifespan shutdown, as ``asyncio.run()`` does under an
    ASGI server, instead of holding the worker's exit for ``shutdown_timeout``."""
    cancelled: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # no lifespan
        mode = scope["path"].strip("/")

        async def watcher() -> None:
            try:
                while True:  # noqa: ASYNC110 (a poller, as the library's is)
                    await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                cancelled.append(mode)
                raise

        asyncio.get_running_loop().create_task(watcher())
        await respond(send, b"ok")

    for mode in ("inline", "thread", "shared"):
        with serving(app, loop_mode=mode, shutdown_timeout=30.0) as adapter:
            assert call(adapter, make_environ(path=f"/{mode}")).body == b"ok"
            started = time.monotonic()
            adapter.shutdown()
            assert time.monotonic() - started < 2.0, mode
    assert cancelled == ["inline", "thread", "shared"]


def test_shutdown_still_waits_for_work_after_the_response() -> None:
    """What A2W-LIFE-07 waits for: a request's own work after its final body (a
    background task) runs to its end at shutdown, bounded by the timeout."""
    finished: list[str] = []
    release = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await respond(send, b"ok")
        await asyncio.to_thread(release.wait, TIMEOUT)
        await asyncio.sleep(0.3)
        finished.append("background")

    for mode in ("inline", "thread", "shared"):
        finished.clear()
        release.clear()
        with serving(app, loop_mode=mode) as adapter:
            assert call(adapter).body == b"ok"
            release.set()
            adapter.shutdown(timeout=5.0)
            assert finished == ["background"], mode


@pytest.mark.parametrize("mode", ["inline", "thread", "shared"])
def test_sse_starlette_app_shuts_down_at_once(mode: str) -> None:
    """The library behind the MCP SDK's SSE responses, served once: its watcher task is
    left on the loop; shutdown takes well under its ``shutdown_timeout``."""
    from sse_starlette.sse import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    async def events(request: Request) -> EventSourceResponse:
        async def stream() -> Any:
            yield {"data": "one"}

        return EventSourceResponse(stream())

    sse_app = Starlette(routes=[Route("/", events)])
    with serving(sse_app, loop_mode=mode, shutdown_timeout=30.0) as adapter:
        result = call(adapter)
        assert result.code == 200
        assert b"data: one" in result.body
        started = time.monotonic()
        adapter.shutdown()
        assert time.monotonic() - started < 2.0


def test_loop_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="'inline', 'thread' or 'shared'"):
        ASGIToWSGI(RunOnce(), loop_mode="shard")  # type: ignore[arg-type]
