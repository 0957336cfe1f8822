"""The app's ``receive()`` in one ASGIToWSGI request: the request body, then the wait
for the end.

``receive()`` reads ``wsgi.input`` on demand in bounded chunks, never past
``CONTENT_LENGTH``; an input that may block on the socket is read by a helper thread
(``_a2w.body``) so the loop keeps running. After the body it waits until the response
is complete or the server closed it, then answers ``http.disconnect`` (A2W-RECV-06/07),
polling waitress's probe while it waits (A2W-RECV-11). Several tasks may call it at
once (A2W-RECV-09): one reads at a time.

The round trip on the server's loop (``_a2w.nested``) keeps this shape and changes
three hooks: its lock and its wait are anyio's, and it reads in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._protocol import body_read, read_size
from .._types import Message
from .body import GONE, BodyReader
from .channel_state import ChannelState

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

logger = logging.getLogger("bridgeway")

DISCONNECT: Message = {"type": "http.disconnect"}


def read_or_none(stream: Any, size: int) -> bytes | None:
    try:
        return stream.read(size)  # type: ignore[no-any-return]
    except Exception as exc:  # any failure of the server's stream: the client is gone
        logger.debug("ASGIToWSGI: reading wsgi.input failed: %r", exc)
        return None


class Receiving(ChannelState):
    __slots__ = ()

    async def receive(self) -> Message:
        if self.body_done:
            if not (self.final or self.closed):
                await self._wait_gone()
            return DISCONNECT
        lock = self.read_lock
        if lock is None:
            lock = self.read_lock = self._new_lock()
        async with lock:  # several tasks may call receive() (A2W-RECV-09)
            if self.body_done:
                return await self.receive()
            left = self.body_left
            if left == 0:
                self.body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return await self._read(left)

    def _new_lock(self) -> AbstractAsyncContextManager[Any]:
        return asyncio.Lock()

    async def _read(self, left: int | None) -> Message:
        stream = self.environ["wsgi.input"]
        if not isinstance(stream, (io.BytesIO, io.BufferedRandom)):
            # May block on the socket: a helper thread reads ahead (see _a2w.body).
            if self.reader is None:
                self.reader = BodyReader(
                    self.loop,
                    stream,
                    left,
                    self.adapter.chunk_size,
                    start=self.ploop.start_helper,
                    by_message=stream.read_message if self.by_message else None,
                )
            item = await self.reader.next()
            return self._item_message(None if item is GONE else item)
        # In memory (waitress, tests) or a temp file (waitress): never blocks.
        size = read_size(left, self.adapter.chunk_size)
        return self._body_message(read_or_none(stream, size), left)

    def _item_message(self, item: tuple[bytes, bool] | None) -> Message:
        """The ``http.request`` message for one body message read ahead (None: the body
        ended early, or the read failed), or ``http.disconnect``."""
        if item is None:
            self.body_done = True
            return DISCONNECT
        data, more = item
        self.body_done = not more
        return {"type": "http.request", "body": data, "more_body": more}

    def _body_message(self, data: bytes | None, left: int | None) -> Message:
        """The ``http.request`` message for what a read of ``wsgi.input`` gave (None:
        the read failed), or ``http.disconnect`` when the body ended early."""
        step = body_read(left, data)
        if step is None:  # the read failed, or b"" before the declared length
            self.body_done = True
            return DISCONNECT
        self.body_left, more = step
        if not more:
            self.body_done = True
        return {"type": "http.request", "body": data, "more_body": more}

    async def _wait_gone(self) -> None:
        gone = self.gone
        if gone is None:
            gone = self.gone = self.loop.create_future()
        probe: Callable[[], bool] | None = self.environ.get("waitress.client_disconnected")
        if probe is None:
            await asyncio.shield(gone)
            return
        # waitress can tell whether the client left while the app is silent
        # (A2W-RECV-11): poll it.
        interval = self.adapter.disconnect_poll_interval
        while not gone.done():
            try:
                await asyncio.wait_for(asyncio.shield(gone), interval)
            except asyncio.TimeoutError:
                if probe():
                    return
