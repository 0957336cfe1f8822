"""Reading a WSGI request body for ASGIToWSGI without blocking the event loop.

A ``wsgi.input`` that may block on the socket (gunicorn, werkzeug, wsgiref, uWSGI,
cheroot) is read by a helper thread, never past ``CONTENT_LENGTH`` (A2W-RECV-02), and
only once the app first asked for the body (A2W-RECV-10). The first two chunks are read
strictly on demand, so an app that reads a little and answers leaves the rest of the
body untouched; once the app has shown that it streams the body, the reader runs up to
``ahead`` chunks ahead. The loop is woken only when the app waits for a chunk that is
not there yet, and the reader only when it paused on a full buffer and half of it was
taken: a fast upload costs no thread hop per chunk, while timers and the app's other
tasks keep running during a slow one (A2W-RECV-08).

At the end of the request the reader is stopped and its read in flight is waited for
(bounded): the server must never read the connection while the helper still does.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .._protocol import body_read, read_size

logger = logging.getLogger("bridgeway")

GONE = object()  # the client went away before the end of the body


class BodyReader:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        stream: Any,
        length: int | None,
        chunk_size: int,
        ahead: int = 4,
        start: Callable[[Callable[[], None]], None] | None = None,
        by_message: Callable[[int], tuple[bytes, bool]] | None = None,
    ) -> None:
        self._loop = loop
        self._stream = stream
        # Reads the stream a message at a time, to its end (WSGIToASGI's own wsgi.input
        # in a round trip, _carry.carry_body); ``length`` is None then.
        self._by_message = by_message
        self._left = length
        self._chunk_size = chunk_size
        self._ahead = ahead
        self._cond = threading.Condition()
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._stopped = False
        self._taken = 0
        self._ended = False  # the last item (end of body, or GONE) was pushed
        self._finished = threading.Event()
        if start is None:
            loop.run_in_executor(None, self._run)
        else:
            start(self._run)  # under greenlets: a green thread of its own

    # ------------------------------------------------------------- helper thread

    def _run(self) -> None:
        try:
            left = self._left
            while True:
                with self._cond:
                    while not self._may_read() and not self._stopped:
                        self._paused = True
                        self._cond.wait()
                    self._paused = False
                    if self._stopped:
                        return
                size = read_size(left, self._chunk_size)
                more = True
                try:
                    if self._by_message is None:
                        data = self._stream.read(size)
                    else:
                        data, more = self._by_message(size)
                except Exception as exc:  # the server's stream broke (werkzeug's
                    # ClientDisconnected is an HTTPException, cheroot's MaxSizeExceeded...):
                    # for the app, the client is gone; never leave it waiting.
                    logger.debug("ASGIToWSGI: reading wsgi.input failed: %r", exc)
                    self._push(GONE)
                    return
                if self._by_message is not None:
                    self._push((data, more))  # the client's message, its end with the last
                    if not more:
                        return
                    continue
                step = body_read(left, data)
                if step is None:  # b"" before the declared length: the client went away
                    self._push(GONE)
                    return
                left, more = step
                self._push((data, more))
                if not more:
                    return
        except BaseException:
            logger.exception("ASGIToWSGI: internal error in the wsgi.input reader")
            raise
        finally:
            if not self._ended:
                self._push(GONE)  # however the reader stopped, no receive() waits for ever
            self._finished.set()

    def _may_read(self) -> bool:
        if self._taken < 2:  # on demand only: the app is waiting and nothing is ready
            return not self._items and self._waiter is not None
        return len(self._items) < self._ahead

    def _push(self, item: Any) -> None:
        if item is GONE or not item[1]:
            self._ended = True
        with self._cond:
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)

    # ---------------------------------------------------------------- the loop

    async def next(self) -> Any:
        """The next ``(body, more_body)``, or ``GONE``."""
        while True:
            with self._cond:
                if self._items:
                    item = self._items.popleft()
                    self._taken += 1
                    if self._paused and len(self._items) <= self._ahead // 2:
                        self._cond.notify()
                    return item
                if self._stopped:
                    return GONE
                waiter = self._waiter = self._loop.create_future()
                if self._paused:
                    self._cond.notify()  # a demand: the reader may read now
            await waiter

    # ------------------------------------------------------------- end of request

    def stop(self, timeout: float) -> None:
        """Stop reading; wait up to ``timeout`` for a read in flight to return."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if not self._finished.wait(timeout):
            logger.warning(
                "ASGIToWSGI: a wsgi.input read was still blocked %gs after the response ended",
                timeout,
            )


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
