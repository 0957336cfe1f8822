"""Header and status checks and conversions, both directions. Pure functions, no I/O.

WSGI carries headers as native ``str`` holding latin-1 code points (PEP 3333 §Unicode
Issues); ASGI carries them as raw ``bytes`` (ASGI-www §WSGI encoding differences). Every
conversion here is therefore a latin-1 encode or decode, never ASCII or UTF-8, so byte
values 0x80-0xFF survive both ways.
"""

from __future__ import annotations

import re
from http import HTTPStatus

# RFC 9110 §5.6.2 token characters.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# CR, LF and NUL allow response splitting; anything above U+00FF cannot be latin-1.
_BAD_STR_VALUE = re.compile(r"[\x00\r\n\u0100-\U0010ffff]")
_BAD_BYTES_VALUE = re.compile(rb"[\x00\r\n]")
# "NNN reason": three digits, one space, a reason without control characters (PEP 3333,
# as wsgiref.validate checks it); the reason itself may be empty.
_STATUS = re.compile(r"([0-9]{3}) [^\x00-\x08\x0a-\x1f\x7f]*")

# Connection-specific ("hop-by-hop") headers belong to the server that frames the
# message (PEP 3333 §Other HTTP Features, RFC 9110 §7.6.1); h2 even treats them as a
# protocol error (RFC 9113 §8.2.2).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_HOP_BY_HOP_BYTES = frozenset(h.encode() for h in HOP_BY_HOP)


def parse_wsgi_status(status: object) -> int:
    """Check a PEP 3333 status line (``"200 OK"``) and return its code.

    Raises ``TypeError``/``ValueError`` in the application (PEP 3333 §The start_response()
    Callable). Any code from 100 to 999 is the response's status, a 1xx or a 6xx too:
    gunicorn, waitress, werkzeug and wsgiref send such a line as the WSGI app gave it,
    and an ASGI server sends such a status (uvicorn: ``Response(status_code=123)``), so
    an odd-but-valid status is served, not turned into a 500 (issue 13 point 4).
    The reason phrase is dropped: ASGI has no field for it (ASGI-www §WSGI Compatibility).
    """
    code = _STATUS_CODES.get(status) if type(status) is str else None
    if code is not None:
        return code
    if type(status) is not str:
        raise TypeError(
            f"start_response(): status must be a str like '200 OK', got {type(status).__name__}"
            " (PEP 3333 §The start_response() Callable)"
        )
    match = _STATUS.fullmatch(status)
    if match is None:
        raise ValueError(
            f"start_response(): malformed status {status!r}: expected three digits, a space"
            " and a reason phrase without control characters (PEP 3333 §The start_response()"
            " Callable)"
        )
    code = int(match.group(1))
    if code < 100:
        # "099 X": gunicorn and waitress send it as it is, but an ASGI status is an int
        # and a three-digit one (RFC 9110 §15: 100-999 is what HTTP/1.1 can carry).
        raise ValueError(
            f"start_response(): status {match.group(1)} is not a three-digit code from 100"
            " to 999 (RFC 9110 §15)"
        )
    if len(_STATUS_CODES) < 256:  # a bounded cache: an app sends few distinct lines
        _STATUS_CODES[status] = code
    return code


_STATUS_CODES: dict[str, int] = {}


def check_wsgi_header(name: object, value: object) -> tuple[str, str]:
    """Validate one WSGI response header; return it unchanged."""
    if type(name) is not str or type(value) is not str:
        raise TypeError(
            f"start_response(): header ({name!r}, {value!r}) must be a pair of str"
            " (PEP 3333 §The start_response() Callable)"
        )
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"start_response(): header name {name!r} is not an RFC 9110 token")
    if _BAD_STR_VALUE.search(value) is not None:
        raise ValueError(
            f"start_response(): header {name!r} has a value with CR, LF, NUL or a character"
            " outside latin-1 (PEP 3333 §Unicode Issues)"
        )
    return name, value


# WSGI response headers already checked, in their ASGI form: most responses repeat the
# same (name, value) pairs, so each is checked and converted once. Only plain headers
# are kept (hop-by-hop ones are dropped with a warning each time); for Content-Length,
# whose value changes, only the spellings of the name. Both caches are bounded.
WSGI_PAIRS: dict[tuple[str, str], tuple[bytes, bytes]] = {}
WSGI_LENGTH_NAMES: set[str] = set()


def remember_wsgi_pair(header: object, pair: tuple[bytes, bytes]) -> None:
    if type(header) is tuple and len(WSGI_PAIRS) < 1024:
        WSGI_PAIRS[header] = pair


def remember_wsgi_length_name(name: str) -> None:
    if len(WSGI_LENGTH_NAMES) < 64:
        WSGI_LENGTH_NAMES.add(name)


def reason_phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


def status_line(code: int) -> str:
    """``"299 Unknown"``: always the ``NNN reason`` form wsgiref asserts."""
    return f"{code} {_PHRASES.get(code) or reason_phrase(code)}"


_PHRASES = {s.value: f"{s.value} {s.phrase}"[4:] for s in HTTPStatus}


NAME_PLAIN, NAME_CONTENT_LENGTH, NAME_HOP_BY_HOP = 0, 1, 2
_ASGI_NAMES: dict[bytes, tuple[str, int]] = {}


def asgi_header_name(name: object) -> tuple[str, int]:
    """A valid ASGI response header name as WSGI's ``str`` and its kind (plain,
    content-length, hop-by-hop). Checked once per distinct name, then cached."""
    known: tuple[str, int] | None
    try:
        known = _ASGI_NAMES.get(name)  # type: ignore[call-overload]
    except TypeError:  # unhashable (a bytearray): the check below names the problem
        known = None
    if known is not None:
        return known
    if type(name) is not bytes:
        raise TypeError(
            f"http.response.start: header name {name!r} must be bytes (ASGI-www §Response Start)"
        )
    if not name or name[:1] == b":" or _TOKEN.fullmatch(name.decode("latin-1")) is None:
        raise ValueError(f"http.response.start: header name {name!r} is not an HTTP token")
    lower = name.lower()
    kind = (
        NAME_CONTENT_LENGTH
        if lower == b"content-length"
        else NAME_HOP_BY_HOP
        if is_hop_by_hop(lower)
        else NAME_PLAIN
    )
    known = (name.decode("latin-1"), kind)
    if len(_ASGI_NAMES) < 512:  # a bounded cache: header names repeat
        _ASGI_NAMES[name] = known
    return known


# ASGI response headers already checked, in their WSGI form (names as they were sent,
# values decoded): plain headers only, as WSGI_PAIRS for the other direction.
ASGI_PAIRS: dict[tuple[bytes, bytes], tuple[str, str]] = {}


def remember_asgi_pair(header: object, pair: tuple[str, str]) -> None:
    if type(header) is tuple and len(ASGI_PAIRS) < 1024:
        ASGI_PAIRS[header] = pair


def check_asgi_value(name: bytes, value: object) -> None:
    if type(value) is not bytes:
        raise TypeError(
            f"http.response.start: header {name!r} value {value!r} must be bytes"
            " (ASGI-www §Response Start)"
        )
    if _BAD_BYTES_VALUE.search(value) is not None:
        raise ValueError(f"http.response.start: header {name!r} value contains CR, LF or NUL")


def is_hop_by_hop(lower_name: bytes) -> bool:
    return lower_name in _HOP_BY_HOP_BYTES or lower_name.startswith(b"proxy-")
