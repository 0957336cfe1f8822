"""A2W-LIFE (loops): the app runs on an asyncio loop in the WSGI server's own thread,
loops are pooled per process, nothing is made at construction, an inherited pool is
dropped after fork, and the "thread" loop mode keeps tasks running between requests
(A2W-LIFE-02, A2W-LIFE-04, A2W-LIFE-08)."""

from __future__ import annotations

import asyncio
import json
import os
import select
import threading
import time
import warnings
from typing import Any

import pytest

from bridgeway import ASGIToWSGI
from bridgeway._types import Receive, Scope, Send
from tests.support.a2w_driver import call, respond, serving, ticker_app
from tests.support.waiting import TIMEOUT


class MarkedLoop(asyncio.SelectorEventLoop):
    """A loop type the app can recognise (stands in for uvloop's ``Loop``)."""


class Where:
    """An ASGI app recording, for each request, the thread and loop it ran on."""

    def __init__(self) -> None:
        self.threads: list[int] = []
        # The Thread objects themselves: idents of joined threads are reused by CPython,
        # object identity of threads still referenced here is not.
        self.thread_objects: list[threading.Thread] = []
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.startups: list[tuple[int, asyncio.AbstractEventLoop]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        if scope["type"] == "lifespan":
            await receive()
            self.startups.append((os.getpid(), loop))
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.threads.append(threading.get_ident())
        self.thread_objects.append(threading.current_thread())
        self.loops.append(loop)
        await respond(send, type(loop).__name__.encode())


def test_app_runs_in_the_calling_thread() -> None:
    """The app's coroutine runs on a loop in the very thread that called the adapter:
    no hand-off per request or per message (DESIGN: an event loop per worker thread)."""
    app = Where()
    seen: list[int] = []

    def worker() -> None:
        seen.append(threading.get_ident())
        with serving(app) as adapter:
            assert call(adapter).body == b"_UnixSelectorEventLoop"
            assert call(adapter).code == 200

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert app.threads == [seen[0], seen[0]]
    assert app.loops[0] is app.loops[1]


def test_construction_makes_no_thread_and_no_loop() -> None:
    """A2W-LIFE-08: building the adapter starts no thread and creates no loop."""
    made: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        loop = MarkedLoop()
        made.append(loop)
        return loop

    # Compared as sets of Thread objects, not counts: threads left by earlier tests may
    # end meanwhile, and none of them is one the adapter started.
    before = set(threading.enumerate())
    adapter = ASGIToWSGI(Where(), loop_factory=factory)
    try:
        assert set(threading.enumerate()) - before == set()
        assert made == []
        assert adapter.loops_created == 0
        assert call(adapter).code == 200
        assert len(made) == 1
        assert adapter.loops_created == 1
        # Serving a plain request inline started no thread either.
        assert set(threading.enumerate()) - before == set()
    finally:
        adapter.shutdown(timeout=5.0)


def test_short_lived_threads_reuse_pooled_loops() -> None:
    """A2W-LIFE-02: 1,000 sequential requests, each from a new thread (werkzeug
    threaded=True), create a handful of loops and run a handful of startups."""
    app = Where()
    with serving(app) as adapter:
        codes: list[int] = []
        callers: list[threading.Thread] = []
        for _ in range(1000):
            thread = threading.Thread(target=lambda: codes.append(call(adapter).code))
            callers.append(thread)  # kept alive as objects, so each stays distinct
            thread.start()
            thread.join(TIMEOUT)
            assert not thread.is_alive()
        assert codes == [200] * 1000
        # Each request ran in the very thread that called it: 1,000 distinct threads
        # (compared by object, since CPython reuses the ident of a joined thread).
        assert len(app.thread_objects) == 1000
        assert all(ran is caller for ran, caller in zip(app.thread_objects, callers, strict=True))
        assert adapter.loops_created <= 2
        assert len(app.startups) == adapter.loops_created
        assert len({id(loop) for loop in app.loops}) <= 2


def test_concurrent_threads_get_their_own_loops() -> None:
    """Two requests in flight at once run on two loops, each in its caller's thread."""
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    records: list[tuple[int, asyncio.AbstractEventLoop]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise AssertionError("no lifespan")
        records.append((threading.get_ident(), asyncio.get_running_loop()))
        # Both requests are inside the app at once: each holds its own loop. A blocking
        # wait is fine here because each loop belongs to one thread.
        barrier.wait()
        await respond(send)

    with serving(app) as adapter:
        threads = [threading.Thread(target=call, args=(adapter,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert adapter.loops_created == 2
    assert {t.ident for t in threads} == {ident for ident, _ in records}
    assert records[0][1] is not records[1][1]


def test_loop_factory_type_is_the_running_loop() -> None:
    """A2W-LIFE-11: ``loop_factory`` makes the loops; the app sees that loop type."""
    app = Where()
    with serving(app, loop_factory=MarkedLoop) as adapter:
        assert call(adapter).body == b"MarkedLoop"
    assert isinstance(app.startups[0][1], MarkedLoop)


@pytest.mark.parametrize("loop_mode", ["inline", "shared"])
def test_fork_discards_inherited_pool(loop_mode: str) -> None:
    """A2W-LIFE-08: an adapter that served a request before ``fork()`` does not reuse
    the inherited loop in the child; the child makes its own (with the factory), runs
    its own lifespan startup, and serves. The parent's loop keeps working. In shared
    mode the parent's loop runs in a thread the child does not have."""
    made: list[int] = []

    def factory() -> asyncio.AbstractEventLoop:
        made.append(os.getpid())
        return MarkedLoop()

    app = Where()
    with serving(app, loop_factory=factory, loop_mode=loop_mode) as adapter:
        assert call(adapter).body == b"MarkedLoop"
        parent_loop = app.loops[0]
        read_fd, write_fd = os.pipe()
        with warnings.catch_warnings():
            # 3.12+ warns about fork() with threads running (the shared loop's thread);
            # what this tests is exactly that the child does not use it.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: report, then leave without running pytest's teardown
            status = 1
            try:
                result = call(adapter)
                child_loop = app.loops[-1]
                child_report = {
                    "code": result.code,
                    "body": result.body.decode(),
                    "reused": child_loop is parent_loop,
                    "running_in_child_made_loop": made[-1] == os.getpid(),
                    "startups_in_child": sum(1 for p, _ in app.startups if p == os.getpid()),
                    "parent_loop_closed": parent_loop.is_closed(),
                }
                os.write(write_fd, json.dumps(child_report).encode())
                ok = (
                    child_report["code"] == 200
                    and not child_report["reused"]
                    and child_report["running_in_child_made_loop"]
                    and child_report["startups_in_child"] == 1
                )
                status = 0 if ok else 3
            except BaseException:
                status = 2
            finally:
                os._exit(status)
        os.close(write_fd)
        deadline = time.monotonic() + TIMEOUT
        while True:
            waited, exit_status = os.waitpid(pid, os.WNOHANG)
            if waited:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the forked child did not finish")
            time.sleep(0.01)
        ready, _, _ = select.select([read_fd], [], [], 1.0)
        raw = os.read(read_fd, 65536) if ready else b""
        os.close(read_fd)
        report: dict[str, Any] = json.loads(raw) if raw else {}
        assert os.waitstatus_to_exitcode(exit_status) == 0, report
        assert report == {
            "code": 200,
            "body": "MarkedLoop",
            "reused": False,
            "running_in_child_made_loop": True,
            "startups_in_child": 1,
            "parent_loop_closed": False,
        }
        # The parent goes on with its own loop, untouched by the child.
        assert call(adapter).code == 200
        assert app.loops[-1] is parent_loop
        assert adapter.loops_created == 1


def _ticks_between_requests(loop_mode: str) -> int:
    ticks: list[float] = []
    with serving(ticker_app(ticks, 0.1), loop_mode=loop_mode) as adapter:
        first = int(call(adapter).body)
        time.sleep(2.0)
        second = int(call(adapter).body)
    return second - first


def test_thread_mode_keeps_tasks_running_between_requests() -> None:
    """A2W-LIFE-04 (b): in ``loop_mode="thread"`` a 100 ms ticker started at lifespan
    advances while no request runs: about 20 ticks in 2 s."""
    assert _ticks_between_requests("thread") >= 15


def test_inline_mode_parks_tasks_between_requests() -> None:
    """A2W-LIFE-04, the documented trade-off of the default ``inline`` mode: the loop
    only runs while a request (or background work) runs it, so the same ticker does not
    advance between two requests 2 s apart; its overdue tick runs on the next request."""
    assert _ticks_between_requests("inline") <= 1


def test_thread_mode_runs_app_on_the_loop_thread() -> None:
    """In thread mode each pooled loop has a thread of its own (one hand-off per step):
    the app runs there, not in the caller's thread, and shutdown() stops that thread."""
    app = Where()
    # Sets of Thread objects, not counts: threads left by earlier tests may end meanwhile.
    before = set(threading.enumerate())
    with serving(app, loop_mode="thread") as adapter:
        assert call(adapter).code == 200
        assert call(adapter).code == 200
        loop_thread = app.thread_objects[0]
        assert loop_thread is not threading.current_thread()
        assert app.thread_objects[1] is loop_thread
        # The adapter started exactly one thread, and it is the one the app ran in.
        assert set(threading.enumerate()) - before == {loop_thread}
    loop_thread.join(TIMEOUT)
    assert not loop_thread.is_alive()
    assert set(threading.enumerate()) - before == set()


@pytest.mark.parametrize("loop_mode", ["inline", "thread"])
def test_app_ending_just_after_its_final_body_never_stalls_the_response(loop_mode: str) -> None:
    """After the final body the WSGI thread lets the app run a few loop steps (to catch
    an exception raised right after it, A2W-SEND-05). In thread mode the app may end
    on the loop thread between that check and the step: the step must still finish.
    The app blocks its loop for a moment after its last send() so that the WSGI thread
    always reaches the check first (a regression: the response hung for ever)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        await asyncio.sleep(0)  # lets the WSGI thread be woken with the final body
        time.sleep(0.2)  # noqa: ASYNC251 (blocks the loop on purpose: the race window)

    results: list[bytes] = []
    with serving(app, loop_mode=loop_mode, lifespan="off") as adapter:
        for _ in range(3):
            worker = threading.Thread(target=lambda: results.append(call(adapter).body))
            worker.start()
            worker.join(TIMEOUT)
            assert not worker.is_alive(), "the response never ended"
    assert results == [b"done"] * 3
