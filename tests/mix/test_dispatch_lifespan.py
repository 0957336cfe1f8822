"""Lifespan fan-out of ASGIDispatcher: every mount started and stopped, state shared, a
failing mount fails startup (in process on asyncio and trio, and under uvicorn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

from bridgeway import ASGIDispatcher, WSGIToASGI
from bridgeway._types import Message, Receive, Scope, Send
from tests.live.mixed_apps import raw_wsgi
from tests.live.servers import SERVERS, ServerProcess

if TYPE_CHECKING:
    pass


def lifespan_app(log: list[str], name: str, fail: bool = False) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        if fail:
            await send({"type": "lifespan.startup.failed", "message": f"{name} is broken"})
            return
        scope["state"][name] = True
        log.append(f"{name} up")
        await send({"type": "lifespan.startup.complete"})
        await receive()
        log.append(f"{name} down")
        await send({"type": "lifespan.shutdown.complete"})

    return app


async def no_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    # As Django's ASGIHandler: lifespan is not supported, it raises.
    raise ValueError("only http")


async def run_lifespan(app: Any, state: dict[str, Any]) -> list[Message]:
    sent: list[Message] = []
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> Message:
        if sent and sent[-1]["type"] == "lifespan.startup.failed":
            await anyio.sleep_forever()
        if len(inbox) == 1 and not sent:
            await anyio.sleep_forever()
        return inbox.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    with anyio.fail_after(10):
        await app(scope, receive, send)
    return sent


async def test_lifespan_fan_out_runs_every_mount_and_shares_state() -> None:
    log: list[str] = []
    hooks: list[str] = []
    dispatcher = ASGIDispatcher(
        {
            "/a": lifespan_app(log, "a"),
            "/w": WSGIToASGI(raw_wsgi, on_startup=[lambda: hooks.append("w up")]),
            "/django": no_lifespan,
        },
        default=lifespan_app(log, "b"),
    )
    state: dict[str, Any] = {}
    sent = await run_lifespan(dispatcher, state)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert sorted(log) == ["a down", "a up", "b down", "b up"]
    assert hooks == ["w up"]
    assert state == {"a": True, "b": True}


async def test_lifespan_fan_out_fails_startup_when_one_mount_fails() -> None:
    log: list[str] = []
    dispatcher = ASGIDispatcher(
        {"/good": lifespan_app(log, "good"), "/bad": lifespan_app(log, "bad", fail=True)}
    )
    sent = await run_lifespan(dispatcher, {})
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert sent[0]["message"] == "startup failed: '/bad': bad is broken"
    # The mount that did start is shut down again before the failure is reported.
    assert log == ["good up", "good down"]


@pytest.mark.servers
def test_uvicorn_refuses_to_start_when_a_mount_fails_startup() -> None:
    server = ServerProcess(SERVERS["uvicorn-h11"], "tests.live.mixed_apps:lifespan_failing")
    server.launch()
    try:
        assert server.proc is not None
        assert server.proc.wait(timeout=30) != 0
        assert "startup failed: '/bad': " in server.log()
        assert "the database is down" in server.log()
    finally:
        server.stop()
        server.discard_log()
