"""HTTP and PEP 3333 rules that both adapters and the dispatchers apply, each written once.

Pure functions and constants, no I/O of their own (the WSGI helpers call the
``start_response`` or ``read`` they are given). Every module that parses a
Content-Length, reads a request body, decides whether a status carries a body, streams
a file or answers with a short text of its own goes through here, so the rule has one
strictness everywhere:

* **Content-Length** (RFC 9110 §8.6): the value is ``1*DIGIT``, ASCII digits only, after
  the optional whitespace (SP, HTAB) that surrounds any field value (RFC 9110 §5.5).
  A sign, an underscore, inner whitespace, a non-ASCII digit (``"²"``, Arabic-Indic ones) or a
  comma list are invalid. RFC 9112 §6.3 lets a recipient either collapse a list of
  identical values (``"5, 5"``) or reject it: bridgeway rejects it, as every call site
  did before this module. Repeated *field lines* are the caller's business: each site
  keeps the first line and refuses a later one whose value differs (HTTP-10).
* **No body** (RFC 9110 §6.4.1, §15.3.5, §15.4.5): 204 and 304 responses carry none.
* **Bounded body reads** (PEP 3333 §Input and Error Streams): a server need not give
  EOF at the end of the body, so a body with a declared length is read in chunks never
  past it; one without (``wsgi.input_terminated``) is read until ``b""``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._types import Message, StartResponse

_OWS = " \t"  # RFC 9110 §5.6.3: the only whitespace around a field value


def parse_content_length(value: bytes | str) -> int | None:
    """The length a Content-Length field value declares, or None when the value is not
    ``1*DIGIT`` (RFC 9110 §8.6). Callers choose the answer to None: a 400 (a request),
    a ``ValueError`` naming the app (a response), or "read and see" (fallback routing)."""
    if isinstance(value, bytes):
        digits: bytes | str = value.strip(b" \t")
        valid = digits.isdigit()  # bytes.isdigit() is ASCII digits only
    else:
        digits = value.strip(_OWS)
        valid = digits.isdigit() and digits.isascii()  # "²".isdigit() is True
    if not valid:
        return None
    try:
        return int(digits)
    except ValueError:  # over Python's int-from-string digit limit: no real length
        return None


# RFC 9110 §15.3.5 (204) and §15.4.5 (304): no content, whatever the app writes. A 1xx
# used as the *final* status is not here: native servers (uvicorn, hypercorn, gunicorn)
# send its body as for any other status, and both adapters do the same.
NO_BODY_STATUSES = frozenset({204, 304})


def status_has_body(status: int) -> bool:
    """May a response with this final status carry body bytes?"""
    return status not in NO_BODY_STATUSES


def read_size(left: int | None, chunk_size: int) -> int:
    """How much to ask ``wsgi.input`` for: never past the declared length (``left``
    bytes still owed; None: no length, read until ``b""``)."""
    return chunk_size if left is None else min(chunk_size, left)


def body_read(left: int | None, data: bytes | None) -> tuple[int | None, bool] | None:
    """``(left, more_body)`` after a read of ``wsgi.input`` gave ``data`` (None: the read
    failed) with ``left`` bytes still owed; None when the client went away: the read
    failed, or gave ``b""`` before the declared length."""
    if left is None:
        if data is None:
            return None
        return None, bool(data)  # b"": the terminated input's end of body
    if not data:
        return None
    left -= len(data)
    return left, left > 0


class FileWrapper:
    """A file as a response iterable (PEP 3333 §Optional Platform-Specific File
    Handling): ``blksize`` bytes at a time from its current position to EOF, read lazily
    in the thread that iterates; ``close()`` closes the file (EXT-01). WSGIToASGI's
    ``wsgi.file_wrapper``, and ASGIToWSGI's pathsend body under a server without one."""

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read, size = self.filelike.read, self.blksize
        while data := read(size):
            yield data


# bridgeway's own short answers (400, 404, 500) are plain text, with a length so the
# server neither chunks them nor closes the connection.
_PLAIN_TYPE = "text/plain; charset=utf-8"


def plain_headers(body: bytes) -> list[tuple[str, str]]:
    """The WSGI headers of one of bridgeway's own plain-text answers."""
    return [("Content-Type", _PLAIN_TYPE), ("Content-Length", str(len(body)))]


def plain_wsgi_response(
    start_response: StartResponse, status: str, body: bytes, exc_info: Any = None
) -> list[bytes]:
    """Answer a WSGI server with ``status`` (a PEP 3333 status line) and ``body``."""
    start_response(status, plain_headers(body), exc_info)
    return [body]


def plain_response(status: int, body: bytes) -> list[Message]:
    """The ASGI messages of the same answer: one start, one final body."""
    headers = [(name.lower().encode(), value.encode()) for name, value in plain_headers(body)]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body, "more_body": False},
    ]
