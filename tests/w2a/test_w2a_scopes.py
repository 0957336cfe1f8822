"""Non-HTTP scopes (W2A-SCOPE-01..07)."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Iterable
from typing import Any

import anyio
import pytest

from bridgeway import ServerContractError, WSGIToASGI
from bridgeway._types import Environ, Message, StartResponse
from tests.support.w2a_driver import Peer, call, make_scope, wait_for

pytestmark = pytest.mark.anyio


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"hello"]


class Channel:
    """A scripted receive() plus a recording send()."""

    def __init__(self, *incoming: Message) -> None:
        self.incoming = list(incoming)
        self.sent: list[Message] = []
        self.received = 0
        self.more = anyio.Event()

    async def receive(self) -> Message:
        while not self.incoming:
            self.more = anyio.Event()
            await self.more.wait()
        self.received += 1
        return self.incoming.pop(0)

    def push(self, message: Message) -> None:
        self.incoming.append(message)
        self.more.set()

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]


def lifespan_scope() -> dict[str, Any]:
    return {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}


STARTUP: Message = {"type": "lifespan.startup"}
SHUTDOWN: Message = {"type": "lifespan.shutdown"}


def test_scope_01_real_coroutine_function() -> None:
    adapter = WSGIToASGI(hello)
    assert inspect.iscoroutinefunction(adapter.__call__)


async def test_scope_01_minimal_scope_without_optional_keys() -> None:
    scope = make_scope()
    for key in ("raw_path", "asgi", "root_path", "scheme", "server", "client", "query_string"):
        del scope[key]
    peer = await call(WSGIToASGI(hello), scope)
    assert peer.status == 200
    assert peer.body == b"hello"


async def test_scope_02_lifespan_startup_and_shutdown_complete() -> None:
    adapter = WSGIToASGI(hello)
    channel = Channel(STARTUP, SHUTDOWN)
    with anyio.fail_after(5):
        await adapter(lifespan_scope(), channel.receive, channel.send)
    assert channel.types == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_scope_02_hooks_run_in_a_worker_thread() -> None:
    calls: list[tuple[str, int]] = []
    loop_thread = threading.get_ident()
    adapter = WSGIToASGI(
        hello,
        on_startup=[lambda: calls.append(("start-1", threading.get_ident()))],
        on_shutdown=[
            lambda: calls.append(("stop-1", threading.get_ident())),
            lambda: calls.append(("stop-2", threading.get_ident())),
        ],
    )
    channel = Channel(STARTUP)
    async with anyio.create_task_group() as tg:
        tg.start_soon(adapter, lifespan_scope(), channel.receive, channel.send)
        await wait_for(lambda: channel.types == ["lifespan.startup.complete"])
        assert [name for name, _ in calls] == ["start-1"]
        # requests are served between startup and shutdown
        assert (await call(adapter)).body == b"hello"
        channel.push(SHUTDOWN)
    assert channel.types == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [name for name, _ in calls] == ["start-1", "stop-1", "stop-2"]
    assert loop_thread not in {thread for _, thread in calls}


async def test_scope_02_shutdown_waits_for_inflight_requests() -> None:
    release = threading.Event()
    running = threading.Event()
    closed: list[int] = []

    class Body:
        def __iter__(self) -> Any:
            yield b"slow"

        def close(self) -> None:
            closed.append(1)

    def slow(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        running.set()
        release.wait(10)
        start_response("200 OK", [])
        return Body()

    adapter = WSGIToASGI(slow)
    channel = Channel(STARTUP)
    peer = Peer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(adapter, lifespan_scope(), channel.receive, channel.send)
        await wait_for(lambda: len(channel.sent) == 1)
        tg.start_soon(call, adapter, make_scope(), peer)
        await wait_for(running.is_set)
        channel.push(SHUTDOWN)
        await anyio.sleep(0.05)
        assert channel.types == ["lifespan.startup.complete"]  # still waiting
        release.set()
    assert channel.types == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert peer.body == b"slow"
    assert closed == [1]


async def test_scope_03_failing_startup_hook(caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("database unreachable")

    adapter = WSGIToASGI(hello, on_startup=[boom])
    channel = Channel(STARTUP)
    with caplog.at_level(logging.ERROR, logger="bridgeway"), anyio.fail_after(5):
        await adapter(lifespan_scope(), channel.receive, channel.send)  # does not raise
    assert channel.types == ["lifespan.startup.failed"]
    assert "database unreachable" in channel.sent[0]["message"]


async def test_scope_03_failing_shutdown_hook(caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("flush failed")

    adapter = WSGIToASGI(hello, on_shutdown=[boom])
    channel = Channel(STARTUP, SHUTDOWN)
    with caplog.at_level(logging.ERROR, logger="bridgeway"), anyio.fail_after(5):
        await adapter(lifespan_scope(), channel.receive, channel.send)
    assert channel.types == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert "flush failed" in channel.sent[1]["message"]


async def test_scope_04_works_without_lifespan() -> None:
    adapter = WSGIToASGI(hello)
    assert (await call(adapter)).status == 200


async def test_scope_06_websocket_refused_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    called: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        called.append(1)
        return hello(environ, start_response)

    adapter = WSGIToASGI(app)
    scope = make_scope(type="websocket", scheme="ws", subprotocols=[])
    del scope["method"]
    channel = Channel({"type": "websocket.connect"})
    before = set(threading.enumerate())
    with caplog.at_level(logging.DEBUG), anyio.fail_after(5):
        await adapter(scope, channel.receive, channel.send)
    assert channel.types == ["websocket.close"]
    assert called == []
    assert set(threading.enumerate()) == before  # the pool was not touched
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "Traceback" not in caplog.text


async def test_scope_07_unknown_scope_type_raises_before_receive() -> None:
    adapter = WSGIToASGI(hello)
    channel = Channel({"type": "http.request"})
    with pytest.raises(ServerContractError, match="'foo'"):
        await adapter({"type": "foo"}, channel.receive, channel.send)
    assert channel.received == 0
    assert channel.sent == []
