"""An idle event loop waits for its one request's thread without the self-pipe
(issue 14, target 1: the sequential hot path).

When a WSGIToASGI request is the only work of an asyncio loop, the loop thread blocks a
moment on a lock the worker thread's reply releases, instead of going back to
``select()`` and being woken through ``call_soon_threadsafe`` (a write to the loop's
self-pipe, a ``select()`` and the reads that drain it). The wait is bounded, so an app
that is slow, or that needs this very loop from its thread, is still served.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any

import anyio.from_thread
import anyio.lowlevel
import pytest
from w2a_driver import call

import bridgeway._threads
from bridgeway import WSGIToASGI
from bridgeway._types import Environ, StartResponse

pytestmark = pytest.mark.anyio


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def counting_threadsafe_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every ``call_soon_threadsafe`` of the running loop from here on (the
    loop's bridgeway handle is made again, so that it binds the recording one)."""
    loop = asyncio.get_running_loop()
    calls: list[Any] = []
    original = loop.call_soon_threadsafe

    def record(callback: Callable[..., object], *args: Any, **kwargs: Any) -> Any:
        calls.append(callback)
        return original(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", record)
    monkeypatch.delattr(loop, "_bridgeway_loop_handle", raising=False)
    return calls


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_fast_response_reaches_an_idle_loop_without_a_threadsafe_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A generous bound, so that a loaded machine cannot make the wait time out.
    monkeypatch.setattr(bridgeway._threads, "BLOCK_SECONDS", 5.0)
    calls = counting_threadsafe_calls(monkeypatch)
    adapter = WSGIToASGI(hello)
    for _ in range(3):
        peer = await call(adapter)
        assert peer.status == 200
        assert peer.body == b"hello"
    assert calls == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_idle_wait_is_off_while_other_callbacks_are_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app's thread waits until the loop's other work (a callback that is always
    ready) has moved on: a loop blocked for its request would hold it up for the whole
    bound (5 s here)."""
    monkeypatch.setattr(bridgeway._threads, "BLOCK_SECONDS", 5.0)
    loop = asyncio.get_running_loop()
    started = threading.Event()
    moved_on = threading.Event()
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        if started.is_set():
            ticks += 1
            if ticks == 100:
                moved_on.set()
        if not moved_on.is_set() or ticks < 101:
            loop.call_soon(tick)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started.set()
        assert moved_on.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    loop.call_soon(tick)
    peer = await call(WSGIToASGI(app), seconds=2)
    assert peer.body == b"hello"


async def test_app_that_needs_the_loop_from_its_thread_is_served(
    monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    """The idle wait is bounded: an app whose thread waits for the loop's own work (here
    a coroutine run on it from the thread) is served, once the wait times out."""
    monkeypatch.setattr(bridgeway._threads, "BLOCK_SECONDS", 0.05)
    token = anyio.lowlevel.current_token()

    async def on_the_loop() -> bytes:
        return b"from the loop"

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = anyio.from_thread.run(on_the_loop, token=token)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    adapter = WSGIToASGI(app)
    for _ in range(3):
        peer = await call(adapter, seconds=5)
        assert peer.body == b"from the loop"
