"""The bounded request-body buffer behind fallback routing: pure logic, no I/O.

Fallback routing ("try the new app, fall back to the old one on 404") must be able
to send the *same* request, body included, to a second app. The body is therefore
read ahead into a buffer of at most ``limit`` bytes before the first app runs:

* the whole body fits: both apps get it replayed from the buffer;
* it does not (a ``Content-Length`` over the limit, known before reading anything,
  or a chunked body that grew past it): fallback is *off* for this request, the first
  app gets what was read followed by the rest of the stream, and its answer stands,
  whatever its status. So memory per request stays bounded by ``limit``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._protocol import parse_content_length
from .._types import Message

DEFAULT_FALLBACK_STATUSES = frozenset({404})
DEFAULT_REPLAY_LIMIT = 1024 * 1024


def declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The request's Content-Length, or None if absent or invalid (then we read)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            return parse_content_length(value)
    return None


def environ_length(value: str | None) -> int | None:
    """CONTENT_LENGTH of a WSGI environ as an int; None when empty or invalid."""
    return parse_content_length(value) if value else None


class BodyBuffer:
    """``http.request`` messages read ahead, up to ``limit`` body bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.messages: list[Message] = []
        self.size = 0
        self.complete = False  # the final message (more_body false) is in the buffer
        self.overflow = False  # past the limit: no fallback for this request
        self.disconnect: Message | None = None  # the client left while we read

    @property
    def replayable(self) -> bool:
        """Can a second app be given the whole request again?"""
        return self.complete and not self.overflow and self.disconnect is None

    def add(self, message: Message) -> None:
        if message["type"] == "http.disconnect":
            self.disconnect = message
            return
        self.messages.append(message)
        self.size += len(message.get("body", b""))
        if self.size > self.limit:
            self.overflow = True
        if not message.get("more_body", False):
            self.complete = True

    @property
    def done(self) -> bool:
        """Stop reading ahead: the body ended, overflowed, or the client left."""
        return self.complete or self.overflow or self.disconnect is not None


class Replay:
    """One app's view of the request body: the buffered messages, then the live
    stream (or the recorded ``http.disconnect``, again and again)."""

    def __init__(self, buffer: BodyBuffer) -> None:
        self._pending = list(buffer.messages)
        self._disconnect = buffer.disconnect

    def next_buffered(self) -> Message | None:
        if self._pending:
            return self._pending.pop(0)
        return self._disconnect
