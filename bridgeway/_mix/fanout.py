"""Lifespan fan-out: one lifespan from the server, one per mounted ASGI app (ASGI-life).

Theory of operation: at ``lifespan.startup`` every mount's app is started in a task
of one task group (anyio: asyncio and trio) with a lifespan scope of its own that
shares the server's ``state`` dict (so what a mount stores there reaches the request
scopes, ASGI-life §Lifespan State). Each mount's ``receive`` hands out
``lifespan.startup`` and later ``lifespan.shutdown``; its ``send`` records the answer.

Per mount, startup ends as (a ``LifespanOutcome``): COMPLETE; FAILED
(``startup.failed``, or no answer within ``startup_timeout``); or UNSUPPORTED (the
app raised or returned before
answering, which is how apps without lifespan support behave, e.g. Django's
``ASGIHandler``; as in uvicorn's ``--lifespan auto`` they are served anyway). If any
failed, the server gets ``lifespan.startup.failed`` naming the mounts, after the
mounts that did start were shut down. At ``lifespan.shutdown`` the started mounts are
shut down concurrently; any failure gives ``lifespan.shutdown.failed``.

Not merged with ``_a2w.lifespan`` (ASGIToWSGI's driver of one app per event loop, in
asyncio, with its ``auto``/``on``/``off`` modes): see there why; they share the
outcome type.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .._lifespan_outcome import COMPLETE, FAILED, UNSUPPORTED, LifespanOutcome
from .._types import ASGIApp, Message, Receive, Scope, Send
from ..errors import ProtocolError

logger = logging.getLogger("bridgeway")


class _Mount:
    def __init__(self, label: str, app: ASGIApp, scope: Scope) -> None:
        self.label, self.app = label, app
        self.scope: Scope = {
            "type": "lifespan",
            "asgi": dict(scope.get("asgi") or {"version": "3.0"}),
        }
        if "state" in scope:
            self.scope["state"] = scope["state"]
        self.startup: LifespanOutcome | None = None  # COMPLETE, FAILED or UNSUPPORTED
        self.shutdown: LifespanOutcome | None = None  # COMPLETE or FAILED
        self.message = ""
        self.received = 0
        self.started = anyio.Event()
        self.stopped = anyio.Event()
        self.go_shutdown = anyio.Event()

    async def receive(self) -> Message:
        self.received += 1
        if self.received == 1:
            return {"type": "lifespan.startup"}
        if self.received == 2:
            await self.go_shutdown.wait()
            return {"type": "lifespan.shutdown"}
        await anyio.sleep_forever()  # nothing more will come; cancelled at the end
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed") and not self.startup:
            self.startup = LifespanOutcome(kind.rsplit(".", 1)[1])
            self.message = str(message.get("message", ""))
            self.started.set()
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") and (
            self.received >= 2 and not self.shutdown
        ):
            self.shutdown = LifespanOutcome(kind.rsplit(".", 1)[1])
            self.message = str(message.get("message", ""))
            self.stopped.set()
        else:
            raise ProtocolError(
                f"the app mounted at {self.label} sent {kind!r} out of turn (ASGI-life)"
            )

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception as exc:
            if self.startup is None:
                logger.info(
                    "ASGIDispatcher: the app mounted at %s does not support lifespan (%r)",
                    self.label,
                    exc,
                )
            elif self.shutdown is None and self.go_shutdown.is_set():
                self.shutdown, self.message = FAILED, repr(exc)
            elif self.startup is not FAILED:
                logger.error("ASGIDispatcher: lifespan of %s raised", self.label, exc_info=exc)
        finally:
            if self.startup is None:
                self.startup = UNSUPPORTED
            if self.go_shutdown.is_set() and self.shutdown is None:
                self.shutdown = COMPLETE
            self.started.set()
            self.stopped.set()


async def _stop(mounts: Sequence[_Mount], limit: float) -> list[str]:
    """Shut the started mounts down, concurrently; the failures, as text."""
    started = [m for m in mounts if m.startup is COMPLETE]
    for mount in started:
        mount.go_shutdown.set()
    with anyio.move_on_after(limit):
        for mount in started:
            await mount.stopped.wait()
    failures = []
    for mount in started:
        if mount.shutdown is None:
            failures.append(f"{mount.label}: no answer to shutdown within {limit:g}s")
        elif mount.shutdown is FAILED:
            failures.append(f"{mount.label}: {mount.message}")
    return failures


async def fan_out(
    apps: Sequence[tuple[str, ASGIApp]],
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    startup_timeout: float,
    shutdown_timeout: float,
) -> None:
    """Answer the server's lifespan by running every mount's lifespan."""
    message = await receive()
    if message["type"] != "lifespan.startup":
        raise ProtocolError(f"expected lifespan.startup from the server, got {message!r}")
    mounts = [_Mount(label, app, scope) for label, app in apps]
    async with anyio.create_task_group() as tg:
        await _serve(mounts, tg, receive, send, startup_timeout, shutdown_timeout)
        tg.cancel_scope.cancel()  # mounts still parked in receive()


async def _serve(
    mounts: Sequence[_Mount],
    tg: TaskGroup,
    receive: Receive,
    send: Send,
    startup_timeout: float,
    shutdown_timeout: float,
) -> None:
    for mount in mounts:
        tg.start_soon(mount.run)
    with anyio.move_on_after(startup_timeout):
        for mount in mounts:
            await mount.started.wait()
    failures: list[str] = []
    for mount in mounts:
        if mount.startup is None:
            failures.append(f"{mount.label}: no answer to startup within {startup_timeout:g}s")
        elif mount.startup is FAILED:
            failures.append(f"{mount.label}: {mount.message}")
    if failures:
        await _stop(mounts, shutdown_timeout)
        text = "; ".join(failures)
        logger.error("ASGIDispatcher: lifespan startup failed: %s", text)
        await send({"type": "lifespan.startup.failed", "message": f"startup failed: {text}"})
        return
    await send({"type": "lifespan.startup.complete"})
    message: Any = await receive()
    if message["type"] != "lifespan.shutdown":
        raise ProtocolError(f"expected lifespan.shutdown from the server, got {message!r}")
    failures = await _stop(mounts, shutdown_timeout)
    if failures:
        text = "; ".join(failures)
        await send({"type": "lifespan.shutdown.failed", "message": f"shutdown failed: {text}"})
    else:
        await send({"type": "lifespan.shutdown.complete"})
