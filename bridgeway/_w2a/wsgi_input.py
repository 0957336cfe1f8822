"""``wsgi.input`` for WSGIToASGI: a blocking reader over ASGI ``http.request`` messages.

It runs in the worker thread. Each time it needs bytes it calls ``pull()``, which asks
the event loop for one more ``receive()`` and blocks until it arrives; it never asks
for more than it needs to answer the current call, so at most one message is buffered
(W2A-INPUT-06) and the first ``receive()`` happens at the app's first read, which keeps
``Expect: 100-continue`` meaningful (HTTP-01).

Semantics follow PEP 3333 §Input and Error Streams: ``read(n)`` returns exactly
``min(n, remaining)`` bytes, blocking across messages (W2A-INPUT-01); ``readline`` spans
message boundaries; a body cut short by a disconnect raises ``ClientDisconnected`` on
this and every later call instead of looking like a normal end of file (W2A-INPUT-09).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..errors import ClientDisconnected

# pull() returns the next body chunk and whether more follow; it raises
# ClientDisconnected when the client went away before the end.
Pull = Callable[[], "tuple[bytes, bool]"]


class WSGIInput:
    __slots__ = ("_buf", "_eof", "_error", "_pos", "_pull")

    def __init__(self, pull: Pull) -> None:
        self._pull = pull
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._error: ClientDisconnected | None = None

    def _more(self) -> bytes:
        """The next non-empty chunk, or b"" at the end of the body."""
        if self._error is not None:
            raise self._error
        while not self._eof:
            try:
                chunk, more = self._pull()
            except ClientDisconnected as exc:
                self._error = exc
                raise
            if not more:
                self._eof = True
            if chunk:
                return chunk
        return b""

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            parts = [self._buf[self._pos :]]
            self._buf, self._pos = b"", 0
            while chunk := self._more():
                parts.append(chunk)
            return b"".join(parts)
        if size == 0:
            return b""
        avail = len(self._buf) - self._pos
        if avail >= size:
            start = self._pos
            self._pos = start + size
            return self._buf[start : self._pos]
        parts = [self._buf[self._pos :]] if avail else []
        while avail < size:
            chunk = self._more()
            if not chunk:
                break
            parts.append(chunk)
            avail += len(chunk)
        data = b"".join(parts)
        if len(data) > size:
            self._buf, self._pos = data, size
            return data[:size]
        self._buf, self._pos = b"", 0
        return data

    def read_message(self, size: int) -> tuple[bytes, bool]:
        """At most ``size`` bytes of one body message (what is buffered, else the next
        message) and whether more may follow: a reader that passes the body on keeps the
        client's message boundaries and learns the end with the last message."""
        avail = len(self._buf) - self._pos
        if not avail:
            chunk = self._more()
            if not chunk:
                return b"", False
            self._buf, self._pos, avail = chunk, 0, len(chunk)
        start = self._pos
        self._pos = start + min(size, avail)
        data = self._buf[start : self._pos]
        if self._pos == len(self._buf):
            self._buf, self._pos = b"", 0
            return data, not self._eof
        return data, True

    def readline(self, size: int | None = -1, /) -> bytes:
        limit = -1 if size is None else size
        if limit == 0:
            return b""
        parts: list[bytes] = []
        have = 0
        while True:
            buf, pos = self._buf, self._pos
            if pos >= len(buf):
                chunk = self._more()
                if not chunk:
                    break
                self._buf, self._pos = buf, pos = chunk, 0
            end = buf.find(b"\n", pos) + 1 or len(buf)
            if limit >= 0 and have + (end - pos) > limit:
                end = pos + (limit - have)
            parts.append(buf[pos:end])
            have += end - pos
            self._pos = end
            if buf[end - 1 : end] == b"\n" or (limit >= 0 and have >= limit):
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readlines(self, hint: int | None = -1, /) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        """Apps must not close ``wsgi.input`` (PEP 3333); doing so is harmless here."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False
