"""Fallback routing when the dispatcher is served by a WSGI server.

Theory of operation: the body is read ahead from ``wsgi.input`` (up to CONTENT_LENGTH,
or to EOF when ``wsgi.input_terminated`` is set, PEP 3333 §Input and Error Streams),
at most ``limit`` bytes; see ``_mix.replay``. The first app gets a ``start_response`` that
passes a non-fallback status straight to the server and *holds* a fallback one (its
``write`` discards). Once the status is known (at once for most apps; at the first
chunk for apps that call ``start_response`` lazily, which PEP 3333 allows), a held
answer is closed unread and the second app is called with the same body replayed and
the real ``start_response``. A passed-through answer is returned as it is, so
``wsgi.file_wrapper`` responses keep their fast path.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from .._protocol import body_read, plain_wsgi_response, read_size
from .._types import Environ, OptExcInfo, StartResponse, WSGIApp
from .replay import environ_length


class _Prepended:
    """``wsgi.input`` that yields ``head`` before the rest of the server's stream."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head = io.BytesIO(head)
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        data = self._head.read(size if size is not None and size >= 0 else -1)
        if size is None or size < 0:
            return data + bytes(self._rest.read())
        if len(data) < size:
            data += bytes(self._rest.read(size - len(data)))
        return data

    def readline(self, size: int = -1) -> bytes:
        line = self._head.readline(size if size is not None else -1)
        if line.endswith(b"\n") or (size is not None and 0 <= size <= len(line)):
            return line
        more = self._rest.readline(-1 if size is None or size < 0 else size - len(line))
        return line + bytes(more)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


def read_ahead(environ: Environ, limit: int) -> tuple[bytes, bool]:
    """``(bytes read, whole body read within the limit)``."""
    length = environ_length(environ.get("CONTENT_LENGTH"))
    stream = environ["wsgi.input"]
    if length is not None:
        if length > limit:
            return b"", False  # known too big: nothing read, no fallback
        chunks: list[bytes] = []
        left: int | None = length
        more = length > 0
        while more:  # never past CONTENT_LENGTH: wsgiref's input would block
            chunk = stream.read(read_size(left, limit))
            step = body_read(left, chunk)
            if step is None:
                break
            chunks.append(chunk)
            left, more = step
        return b"".join(chunks), True
    if not environ.get("wsgi.input_terminated"):
        return b"", True  # no CONTENT_LENGTH and not terminated: no body (PEP 3333)
    buffered: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(65536, limit + 1 - size))
        if not chunk:
            return b"".join(buffered), True
        buffered.append(chunk)
        size += len(chunk)
    return b"".join(buffered), False


def with_body(environ: Environ, body: bytes) -> Environ:
    copy = dict(environ)
    copy["wsgi.input"] = io.BytesIO(body)
    if environ_length(environ.get("CONTENT_LENGTH")) is not None:
        copy["CONTENT_LENGTH"] = str(len(body))  # the body may have been cut short
    return copy


class _Holder:
    def __init__(self, start_response: StartResponse, statuses: Collection[int]) -> None:
        self._start_response = start_response
        self._statuses = statuses
        self.status: str | None = None
        self.passed = False

    @property
    def held(self) -> bool:
        return self.status is not None and not self.passed

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Any:
        self.status = status
        if not self.passed and int(status[:3]) in self._statuses:
            return _discard
        self.passed = True
        if exc_info is None:
            return self._start_response(status, headers)
        return self._start_response(status, headers, exc_info)  # type: ignore[arg-type]


def _discard(data: bytes) -> None:
    """The ``write`` of a held answer: it will be replaced, so its body is dropped."""


class _Rest:
    """The first chunks pulled to learn the status, then the rest; closes the original."""

    def __init__(self, pulled: list[bytes], iterator: Iterator[bytes], result: object) -> None:
        self._pulled, self._iterator, self._result = pulled, iterator, result

    def __iter__(self) -> Iterator[bytes]:
        yield from self._pulled
        yield from self._iterator

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()


def _close(result: object) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def serve_with_fallback(
    first: WSGIApp,
    first_environ: Environ,
    second: WSGIApp,
    second_environ: Environ,
    start_response: StartResponse,
    statuses: Collection[int],
    limit: int,
) -> Iterable[bytes]:
    body, replayable = read_ahead(first_environ, limit)
    if not replayable:
        # Over the limit: the first app's answer stands, it reads what we read first
        # (nothing at all when CONTENT_LENGTH said so: then the server's input is kept).
        if body:
            first_environ = dict(first_environ)
            first_environ["wsgi.input"] = _Prepended(body, first_environ["wsgi.input"])
        return first(first_environ, start_response)
    holder = _Holder(start_response, statuses)
    result = first(with_body(first_environ, body), holder)
    pulled: list[bytes] = []
    iterator: Iterator[bytes] | None = None
    try:
        if holder.status is None:
            # PEP 3333: start_response may be called as late as the first chunk.
            iterator = iter(result)
            for chunk in iterator:
                pulled.append(chunk)
                if holder.status is not None:
                    break
    except BaseException:
        _close(result)
        raise
    if not holder.held:
        if iterator is None:
            return result
        return _Rest(pulled, iterator, result)
    _close(result)
    return second(with_body(second_environ, body), start_response)


def not_found(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """What answers a path under no mount when there is neither default nor fallback."""
    return plain_wsgi_response(start_response, "404 Not Found", b"Not Found")
