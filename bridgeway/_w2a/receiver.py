"""The request body and the client's leaving, on the event loop: the receiver task of
one WSGIToASGI request.

Request body: at the app's first read of ``wsgi.input`` (a ``POST_RECV`` post) a
receiver task takes over ``receive()`` and hands up to ``PREFETCH`` messages ahead of
the reads (W2A-INPUT-06); the first ``receive()`` therefore happens only when the app
reads (HTTP-01). It pauses when that many wait unread, and ``wsgi.input`` wakes it once
half of them were taken.

Disconnect: ``send()`` raising ``OSError`` (``_w2a.cycle``), ``receive()`` returning
``http.disconnect`` (seen by the receiver, which keeps listening while a response
streams: W2A-RESP-14), or cancellation of the request task all set ``halt``; the thread
stops at the next chunk boundary and closes the iterable, in its own thread.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from .app_thread import DISCONNECT, PREFETCH
from .trip import TripResponse

if TYPE_CHECKING:
    from .._types import Receive

logger = logging.getLogger("bridgeway")


def _server_broke_receive(kind: object, body_done: bool) -> None:
    what = "after the request body ended" if body_done else "while the body was being read"
    logger.error(
        "WSGIToASGI: the ASGI server broke the receive() contract: it returned %r %s;"
        " only http.request (until more_body=False) and http.disconnect are allowed"
        " (ASGI-www §Request, §Disconnect). bridgeway stops listening for a disconnect"
        " on this request.",
        kind,
        what,
    )


class Receiver(TripResponse):
    """The request's receiver task and its disconnect (all on the loop)."""

    __slots__ = (
        "_body_done",
        "_over",
        "_receive",
        "_receiving",
        "_space",
        "_stream_started",
        "_streaming",
        "_want_receiver",
        "disconnected",
    )

    _receive: Receive
    _body_done: bool  # the last body message was received
    _want_receiver: bool  # the request task is to start the receiver
    _receiving: bool  # it did: from then on only the receiver calls receive()
    _space: anyio.Event | None  # set when wsgi.input took messages (paused receiver)
    _streaming: bool  # the response streams: listen for a disconnect
    _stream_started: anyio.Event | None  # the receiver waits for the stream to start
    _over: bool  # the request is over: the waiting receiver returns
    disconnected: bool

    async def _receive_within(self, scope: anyio.CancelScope) -> None:
        with scope:
            await self._receiver()

    def _do_recv(self) -> None:
        """wsgi.input needs bytes: start the receiver task, or wake it if it paused."""
        if self.disconnected:
            self._input_replies.put(DISCONNECT)
        elif not self._receiving:
            self._want_receiver = True
        elif self._space is not None:
            self._space.set()

    async def _receiver(self) -> None:
        """The only caller of receive() once started (at the app's first body read, or
        when the response starts streaming). It hands body messages to wsgi.input
        ahead of its reads, at most PREFETCH of them (W2A-INPUT-06), so a fast upload
        costs no round trip per chunk; once the body is done it keeps listening for
        http.disconnect (W2A-RESP-14)."""
        replies = self._input_replies
        while True:
            if self._body_done and not self._streaming:
                # Nothing to read; listen for a disconnect only once the response
                # streams (a one-shot response needs no watcher).
                self._stream_started = anyio.Event()
                if not self._streaming:
                    await self._stream_started.wait()
                    if self._over:
                        return  # the request is over (run())
                continue
            if not self._body_done and self._delivered - self._consumed >= PREFETCH:
                self._space = anyio.Event()
                self.paused = True
                if self._delivered - self._consumed >= PREFETCH:  # re-check: no lost wake
                    await self._space.wait()
                self.paused = False
                self._space = None
                continue
            message = await self._receive()
            kind = message.get("type")
            if kind == "http.request" and not self._body_done:
                more = message.get("more_body", False)
                if not more:
                    self._body_done = True
                self._delivered += 1
                replies.put((message.get("body", b""), more))
            elif kind == "http.disconnect":
                self._on_disconnect()
                replies.put(DISCONNECT)
                return
            else:
                # ASGI-www §Request: after more_body=False the only message receive()
                # may return is http.disconnect. A server that answers again at once
                # would turn this loop into a busy spin for the whole response, so
                # stop listening (send() still reports a client that has gone).
                _server_broke_receive(kind, self._body_done)
                if not self._body_done:
                    # The body cannot be completed: wsgi.input raises rather than
                    # hand the app a truncated body that looks whole.
                    self._body_done = True
                    replies.put(DISCONNECT)
                return

    def _on_disconnect(self) -> None:
        self.disconnected = True
        self._halt_now()

    def _halt_now(self) -> None:
        """Stop the thread at its next chunk boundary, or its wait for carried trailers."""
        self.halt = True
        carried = self.carried
        if carried is not None:
            carried.finish()
