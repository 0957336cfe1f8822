"""``start_response``'s checks for WSGIToASGI: a WSGI status line and header list to an
ASGI status, headers and Content-Length. Pure translation, no I/O.

PEP 3333 §The start_response() Callable says what the app passes; what the checks let
through is what the WSGI servers take (gunicorn, waitress, uWSGI, mod_wsgi): any sequence
of (name, value) pairs. Each header is checked once per process: a plain header seen
before is a dict lookup (``_headers.WSGI_PAIRS``), a Content-Length in plain ASCII digits
under a name seen before costs three ``str`` checks. Errors are the app's: ``TypeError``
or ``ValueError``, raised in its thread by ``start_response`` (``_w2a.response``).
"""

from __future__ import annotations

import logging

from .._headers import (
    WSGI_LENGTH_NAMES,
    WSGI_PAIRS,
    check_wsgi_header,
    is_hop_by_hop,
    parse_wsgi_status,
    remember_wsgi_length_name,
    remember_wsgi_pair,
)
from .._protocol import parse_content_length

logger = logging.getLogger("bridgeway")


def check_start(
    status: object, headers: object, strict_headers: bool
) -> tuple[int, list[tuple[bytes, bytes]], str | None]:
    """The status code, the ASGI headers and the Content-Length value (added last), or
    TypeError / ValueError (``strict_headers``: a hop-by-hop header raises)."""
    code = parse_wsgi_status(status)
    # PEP 3333 asks for a list of tuples, but gunicorn, waitress, uWSGI, mod_wsgi and the
    # peer adapters take any sequence of (name, value) pairs, and apps rely on that (lists
    # as pairs, a tuple of headers): only names and values are checked (issue 13, point 4).
    if not isinstance(headers, (list, tuple)):
        raise TypeError(
            f"start_response(): headers must be a list of (name, value) pairs, got"
            f" {type(headers).__name__} (PEP 3333 §The start_response() Callable)"
        )
    asgi_headers: list[tuple[bytes, bytes]] = []
    length: str | None = None
    pairs, length_names = WSGI_PAIRS, WSGI_LENGTH_NAMES
    for header in headers:
        try:
            pair = pairs.get(header)
        except TypeError:  # unhashable (a list as a pair): checked below
            pair = None
        if pair is not None:  # a plain header seen before, checked then
            asgi_headers.append(pair)
            continue
        if not isinstance(header, (tuple, list)) or len(header) != 2:
            raise TypeError(
                f"start_response(): header {header!r} is not a (name, value) pair"
                " (PEP 3333 §The start_response() Callable)"
            )
        name, value = header[0], header[1]
        if not (
            type(value) is str
            and value.isdigit()
            and value.isascii()
            and type(name) is str
            and name in length_names
        ):  # (else a length in plain ASCII digits under a name checked before)
            checked = _check_header(header, name, value, strict_headers)
            if type(checked) is tuple:
                asgi_headers.append(checked)
                continue
            if checked is None:
                continue  # a hop-by-hop header, dropped
            value = checked
        if length is not None:
            if value != length:  # the same field value (RFC 9110 §8.6), not "05" and "5"
                raise ValueError("start_response(): conflicting Content-Length headers")
            continue  # an identical duplicate is dropped (HTTP-10)
        length = value  # appended once, after the other headers
    return code, asgi_headers, length


def _check_header(
    header: object, name: object, value: object, strict_headers: bool
) -> tuple[bytes, bytes] | str | None:
    """A header not seen before: its ASGI pair (remembered for the next response), the
    value of a Content-Length (``str``), or None for a hop-by-hop header dropped."""
    name, value = check_wsgi_header(name, value)
    lower = name.lower()
    if lower == "content-length":
        remember_wsgi_length_name(name)
        if parse_content_length(value) is None:
            raise ValueError(f"start_response(): invalid Content-Length {value!r}")
        return value.strip(" \t")
    if is_hop_by_hop(lower.encode("latin-1")):
        if strict_headers:
            raise ValueError(
                f"start_response(): hop-by-hop header {name!r} belongs to the"
                " server (PEP 3333 §Other HTTP Features)"
            )
        logger.warning("WSGIToASGI: dropped hop-by-hop response header %r", name)
        return None
    # A field value has no leading or trailing whitespace (RFC 9110 §5.5); Django's
    # Set-Cookie values start with a space, which h11 refuses.
    pair = (lower.encode("latin-1"), value.strip(" \t").encode("latin-1"))
    remember_wsgi_pair(header, pair)
    return pair
