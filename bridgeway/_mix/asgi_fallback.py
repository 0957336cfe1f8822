"""Fallback routing when the dispatcher is served by an ASGI server.

Theory of operation: the request body is read ahead into a ``BodyBuffer`` (bounded,
see ``_mix.replay``). The first app runs with a ``receive`` that replays that buffer and a
``send`` that looks at ``http.response.start``: a status outside the fallback set goes
to the server at once (and everything after it), so a normal answer streams with no
delay; a fallback status is *held*, and that response, body included, is swallowed.
When the first app returns with its answer held, the second app runs with a fresh
replay of the same body and the real ``send``. Nothing of the first answer reached the
client, so the second app is free to answer anything (ASGI-www §Response Start: one
start per response, which the client sees exactly once).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from .._protocol import plain_response
from .._types import ASGIApp, Message, Receive, Scope, Send
from .replay import BodyBuffer, Replay, declared_length

logger = logging.getLogger("bridgeway")


async def read_ahead(scope: Scope, receive: Receive, limit: int) -> BodyBuffer:
    buffer = BodyBuffer(limit)
    length = declared_length(scope.get("headers", ()))
    if length is not None and length > limit:
        # Known too big before reading a byte: no fallback, nothing buffered.
        buffer.overflow = True
        return buffer
    while not buffer.done:
        buffer.add(await receive())
    return buffer


def replaying(buffer: BodyBuffer, receive: Receive) -> Receive:
    replay = Replay(buffer)

    async def replay_receive() -> Message:
        message = replay.next_buffered()
        if message is not None:
            return message
        return await receive()

    return replay_receive


class HoldingSend:
    """Passes a response through unless its status is a fallback status."""

    def __init__(self, send: Send, statuses: Collection[int]) -> None:
        self._send = send
        self._statuses = statuses
        self.started = False
        self.held: int | None = None  # the held status

    async def __call__(self, message: Message) -> None:
        if not self.started and message["type"] == "http.response.start":
            self.started = True
            if message["status"] in self._statuses:
                self.held = message["status"]
                return
        if self.held is not None:
            return  # the body (or trailers, pathsend) of an answer that is replaced
        await self._send(message)


async def serve_with_fallback(
    first: ASGIApp,
    first_scope: Scope,
    second: ASGIApp,
    second_scope: Scope,
    receive: Receive,
    send: Send,
    statuses: Collection[int],
    limit: int,
) -> None:
    """Run ``first``; on a held fallback status run ``second`` on the same request."""
    buffer = await read_ahead(first_scope, receive, limit)
    if not buffer.replayable:
        # Over the limit (or the client left): the first app's answer stands.
        await first(first_scope, replaying(buffer, receive), send)
        return
    holding = HoldingSend(send, statuses)
    await first(first_scope, replaying(buffer, receive), holding)
    if holding.held is None:
        return
    logger.debug(
        "ASGIDispatcher: %s %s answered %d by the first app, falling back",
        first_scope.get("method"),
        first_scope.get("path"),
        holding.held,
    )
    await second(second_scope, replaying(buffer, receive), send)


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """What answers a path under no mount when there is neither default nor fallback."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        # Closing before accepting: the server answers the handshake 403 (ASGI-www).
        await send({"type": "websocket.close", "code": 1000})
        return
    for message in plain_response(404, b"Not Found"):
        await send(message)
