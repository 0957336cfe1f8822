"""The app's ``http.response.start``, checked and translated for WSGI: no I/O, no state.

``parse_start`` validates the whole message before anything is kept (A2W-SEND-03): a
rejected start must leave neither a STARTED cycle (the app's corrected start would be
"a second start") nor half its headers behind; ``AppChannel._start`` (``_a2w.channel``)
advances the response cycle only once this returned.
"""

from __future__ import annotations

from .._headers import (
    ASGI_PAIRS,
    NAME_CONTENT_LENGTH,
    NAME_HOP_BY_HOP,
    asgi_header_name,
    check_asgi_value,
    remember_asgi_pair,
)
from .._protocol import parse_content_length
from .._types import Message


def parse_status(status: object) -> int:
    """The start's status as a plain int.

    Any three-digit int, as uvicorn (httptools) sends it, a 1xx as the final status too
    (Response(status_code=123)); status_line() gives it PEP 3333's "NNN reason" form,
    the standard phrase or "Unknown". An int subclass is an int (http.HTTPStatus, as the
    MCP SDK and Starlette users send it; uvicorn and hypercorn serve it), taken as its
    plain value; a bool is not a status.
    """
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
        raise ValueError(f"http.response.start: status must be an int in 100-999, got {status!r}")
    return int(status)


def parse_start(message: Message) -> tuple[int, list[tuple[str, str]], bytes | None]:
    """``(status, WSGI headers, the app's Content-Length or None)``; raises
    ``ValueError`` naming what in the app's start is wrong.

    The WSGI headers leave out hop-by-hop ones (the WSGI server frames the message,
    A2W-SEND-02) and the Content-Length, which the caller adds once (it used to be sent
    twice)."""
    status = parse_status(message["status"])
    headers: list[tuple[str, str]] = []
    length = None
    pairs = ASGI_PAIRS
    for header in message.get("headers", ()):
        try:
            pair = pairs.get(header)
        except TypeError:  # unhashable (a list as a pair): checked below
            pair = None
        if pair is not None:  # a plain header seen before, checked then
            headers.append(pair)
            continue
        name, value = header
        text, kind = asgi_header_name(name)
        if not (kind == NAME_CONTENT_LENGTH and type(value) is bytes and value.isdigit()):
            check_asgi_value(name, value)  # (ASCII digits are a valid value)
        if kind == NAME_CONTENT_LENGTH:
            length = _content_length(length, value)
        elif kind != NAME_HOP_BY_HOP:
            pair = (text, value.decode("latin-1"))
            remember_asgi_pair(header, pair)
            headers.append(pair)
    return status, headers, length


def _content_length(seen: bytes | None, value: bytes) -> bytes:
    """The Content-Length so far, given one more such header of the app's."""
    if seen is not None:
        if value.strip(b" \t") != seen:
            raise ValueError("http.response.start: conflicting content-length headers")
        return seen
    length = value.strip(b" \t")
    if parse_content_length(length) is None:
        raise ValueError(f"http.response.start: invalid content-length {value!r}")
    return length
