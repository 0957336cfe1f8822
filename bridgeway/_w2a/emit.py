"""The ASGI side of a WSGIToASGI response: its state, and each body chunk of the app
turned into ``http.response.body`` messages, in the worker thread (PEP 3333 §Buffering
and Streaming, §Handling the Content-Length Header; ASGI-www §Response Start, §Response
Body).

``Emitter`` holds what one response is (status, headers, Content-Length left, progress)
and ``_emit`` is the per-chunk hot path: in STREAMING a chunk costs one identity check
of the state, one dict per message and the post; the start goes out with the first
non-empty chunk (laziness: PEP 3333 §The start_response() Callable), and the chunk that
meets the Content-Length ends the response (more_body=False), cutting excess bytes
(W2A-RESP-15). Its progress is one state of ``_w2a.states``, changed only through that
module's transition table.

Backpressure: a chunk may be posted while the previous one is still being sent, never
further ahead (a window of two, ``_wait_acks(1)``); ``write()`` waits until its bytes
were sent. So at most a few chunks are in memory (W2A-RESP-10), and a fast app still
lets the loop take two chunks per wake-up. How posts reach the loop is the request's
(``_post_send``, ``_wait_acks``: ``_w2a.app_thread``).

The live verbatim round trip (``_round_trip``, ``_defer``): a chunk before
``start_response`` is held, not refused, and a chunk that is not bytes goes out as a
stand-in, for the WSGI caller to judge as natively.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .._protocol import NO_BODY_STATUSES
from .._types import Message
from ..errors import ProtocolError
from .states import CHUNK, END, EXACT, EXCESS, IDLE, NEXT, STREAMING, illegal

if TYPE_CHECKING:
    from .._round_trip import RoundTrip

logger = logging.getLogger("bridgeway")


class Emitter:
    """One response's state and its chunks' way out (driven from the worker thread)."""

    __slots__ = (
        "_cl",
        "_defer",
        "_early",
        "_headers",
        "_inferred_length",
        "_method",
        "_no_body",
        "_plain_body",
        "_progress",
        "_propagate",
        "_remaining",
        "_round",
        "_start_error",
        "_status",
        "_strict_headers",
        "_wsgi_start",
        "halt",
    )

    def __init__(self, method: str, strict_headers: bool, propagate: bool = True) -> None:
        self._method = method
        self._propagate = propagate
        self._strict_headers = strict_headers
        self._status: int | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._cl: int | None = None
        self._remaining: int | None = None
        self._progress = IDLE  # changed only through _w2a_states' table
        self._inferred_length = False
        self._no_body = False
        self._plain_body = False  # the body is a list or tuple: iterating it runs no app code
        self._round: RoundTrip | None = None  # a live in-process round trip (_round_trip)
        self._wsgi_start: tuple[str, list[tuple[str, str]]] | None = None
        # A live round trip serving the very request its WSGI caller made (set by
        # HTTPCycle): what that caller judges itself natively is deferred to it
        # (_round_trip: a malformed start, a str chunk, a chunk before the start).
        self._defer = False
        self._start_error: BaseException | None = None  # the start's check, deferred
        self._early: list[tuple[bytes, tuple[Any, BaseException]]] | None = None
        self.halt = False

    # Implemented by AppThread (``_w2a.app_thread``): how messages reach send(), and the
    # wait for them.
    def _post_send(self, messages: list[Message]) -> None:
        raise NotImplementedError

    def _wait_acks(self, keep: int = 0) -> None:
        raise NotImplementedError

    def _start_messages(self) -> list[Message]:
        """The start message (in a list: a round trip may add what goes around it)."""
        message: Message = {
            "type": "http.response.start",
            "status": self._status,
            "headers": self._headers,
        }
        if self._wsgi_start is not None and self._round is not None:
            # An ASGIToWSGI of this process serves this response to a WSGI server: it
            # gives that server the app's own status line and headers if this message
            # reaches it unchanged (ASGI has no reason phrase and lower-cases names).
            self._round.sent(message, *self._wsgi_start, self._start_error)
        return [message]

    def _emit(self, chunk: bytes, odd: tuple[Any, BaseException] | None = None) -> bool:
        """Post ``chunk``; True if that completed the response with nothing more to
        pull (DONE, CUT), as the iteration's stop signal (cheaper than re-reading the
        state per chunk). ``odd``: ``chunk`` stands in for what the app gave, and the
        error that is outside a verbatim round trip (``_round_trip``)."""
        progress = self._progress
        messages: list[Message] = []
        if progress is not STREAMING:  # per chunk, only this identity check
            if self._defer and (progress is IDLE or self._early is not None):
                return self._early_chunk(chunk, odd)
            # The headers go out with these bytes; raises before start_response().
            progress = self._progress = NEXT[progress][CHUNK] or illegal(progress, CHUNK)
            messages = self._start_messages()
        if self._no_body:
            return self._emit_no_body(messages, progress)
        remaining = self._remaining
        if remaining is not None and len(chunk) >= remaining:
            if len(chunk) > remaining:
                self._log_excess()
                chunk = chunk[:remaining]
                event = EXCESS
            else:
                # Met exactly: the iterable is pulled once more (FULL). A length we
                # inferred from a one-item list has nothing more to pull (DONE).
                event = END if self._inferred_length else EXACT
            self._remaining = 0
            # Reaching the app's own length ends the response; later write()s are
            # excess and dropped. (A length we inferred from a one-item list cannot be
            # exceeded: the list is all there is.)
            self._progress = NEXT[progress][event] or illegal(progress, event)
            message: Message = {"type": "http.response.body", "body": chunk, "more_body": False}
            if odd is not None and event is not EXCESS:
                self._round.deferred(message, *odd)  # type: ignore[union-attr]
            messages.append(message)
            self._wait_acks()
            self._post_send(messages)
            return event is not EXACT
        if remaining is not None:
            self._remaining = remaining - len(chunk)
        message = {"type": "http.response.body", "body": chunk, "more_body": True}
        if odd is not None:
            self._round.deferred(message, *odd)  # type: ignore[union-attr]
        messages.append(message)
        # Backpressure with a window of two: this chunk may be posted while the one
        # before is still being sent, never further ahead (W2A-RESP-10). The window
        # lets the loop take two chunks per wake-up when the app is fast.
        self._wait_acks(1)
        self._post_send(messages)
        return False

    def _emit_no_body(self, messages: list[Message], progress: int) -> bool:
        """A response without a body (HEAD, 204, 304): the headers go out (in
        ``messages``, if not yet sent), the body never."""
        if self._status in NO_BODY_STATUSES:
            logger.warning(
                "WSGIToASGI: dropped body bytes of a %d response (RFC 9110)", self._status
            )
        # HEAD: the headers are out; the body is never sent (HTTP-03).
        messages.append({"type": "http.response.body", "body": b"", "more_body": False})
        self._progress = NEXT[progress][END] or illegal(progress, END)
        self._post_send(messages)
        return True

    def _early_chunk(self, chunk: bytes, odd: tuple[Any, BaseException] | None) -> bool:
        """A live round trip of the same request (``_defer``): a chunk before
        ``start_response`` is held, not refused, and goes out first once the app
        started its response, each as a stand-in for what the app yielded (its WSGI
        caller, werkzeug's run_wsgi_app, takes such chunks natively). The caller gets
        the app's status and headers before them: ASGI has no body before its start."""
        if self._progress is IDLE:
            if odd is None:
                try:
                    illegal(IDLE, CHUNK)
                except ProtocolError as exc:
                    odd = (chunk, exc)
            if self._early is None:
                self._early = []
            self._early.append((chunk, odd))
            return False
        return self._flush_early() or self._emit(chunk, odd)

    def _flush_early(self) -> bool:
        """Post the chunks held before ``start_response``; True if that completed the
        response (as ``_emit``)."""
        early, self._early = self._early, None
        return any(self._emit(held, odd) for held, odd in early or ())  # stops at True

    def _log_excess(self) -> None:
        logger.error(
            "WSGIToASGI: the WSGI app sent more bytes than its Content-Length (%d);"
            " the excess was cut (PEP 3333 §Handling the Content-Length Header)",
            self._cl,
        )

    def _set_length(self, length: int) -> None:
        self._headers.append((b"content-length", str(length).encode()))
        self._cl = self._remaining = length
        self._inferred_length = True
