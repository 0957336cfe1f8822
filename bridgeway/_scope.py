"""Building an ASGI HTTP scope from a PEP 3333 environ. Pure translation, no I/O.

ASGI-www §HTTP Connection Scope and §WSGI encoding differences: ``path`` and
``root_path`` are unicode (the environ's latin-1 strings re-read as UTF-8), ``path``
*includes* ``root_path`` (A2W-SCOPE-05), ``raw_path`` and ``query_string`` are the raw
bytes, header names are lower-cased bytes and values latin-1 bytes.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from ._protocol import parse_content_length
from .errors import BadRequest

logger = logging.getLogger("bridgeway")

# The HTTP spec version whose behaviour ASGIToWSGI really implements: 2.4 because
# send() raises OSError (ClientDisconnected) once the WSGI server closed the response.
SPEC_VERSION = "2.4"
_PATH_SAFE = "/:@!$&'()*+,;=~-._"
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/:@!$&'()*+,;=~\-._]*")
_ENCODED_SLASH = re.compile(rb"%(2[fF])")
_HEADER_NAMES: dict[str, bytes] = {}  # environ key -> header name, or b""
_SHAPES: dict[tuple[str, ...], tuple[tuple[str, bytes], ...]] = {}
_HTTP_VERSIONS = {"HTTP/1.1": "1.1", "HTTP/1.0": "1.0", "HTTP/2": "2", "HTTP/2.0": "2"}


def _undance(text: str) -> str:
    """An environ path back to unicode: its latin-1 characters are UTF-8 bytes."""
    if text.isascii():
        return text
    return text.encode("latin-1").decode("utf-8", "replace")


def _raw_path(environ: dict[str, Any], path: str) -> bytes:
    """The undecoded target path when the server kept it (gunicorn ``RAW_URI``, uWSGI
    and werkzeug ``REQUEST_URI``) and it agrees with ``path``; else ``path``
    re-encoded, which cannot tell ``%2F`` from ``/`` (documented, A2W-SCOPE-06)."""
    uri: str | None = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri:
        target = uri.split("?", 1)[0]
        if "://" in target:  # absolute-form: only its path counts
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        raw: bytes = target.encode("latin-1", "replace")
        decoded = unquote_to_bytes(raw) if b"%" in raw else raw
        if decoded.decode("utf-8", "replace") == path:
            return raw
        if b"%" in raw:
            # cheroot decodes everything in PATH_INFO but ``%2F`` (a ``/`` kept apart
            # from the separators): the same target, so the raw one still counts;
            # re-quoting the path would double-encode it (``/a%252Fb``).
            kept = unquote_to_bytes(_ENCODED_SLASH.sub(rb"%25\1", raw))
            if kept.decode("utf-8", "replace") == path:
                return raw
    if _PLAIN_PATH.fullmatch(path):
        return path.encode("ascii")  # nothing to quote: the common case
    quoted: str = quote(path, safe=_PATH_SAFE)
    return quoted.encode("ascii")


def content_length(environ: dict[str, Any]) -> int | None:
    """``CONTENT_LENGTH`` as an int, None when absent or empty; 400 when invalid."""
    value = environ.get("CONTENT_LENGTH")
    if not value:
        return None
    length = parse_content_length(value)
    if length is None:
        raise BadRequest(f"invalid Content-Length {value!r}")
    return length


def _header_name(key: str) -> bytes:
    """The ASGI header name of an environ key, or b"" when the key is not a request
    header (``CONTENT_TYPE`` and ``CONTENT_LENGTH`` are added apart)."""
    if key[:5] != "HTTP_" or key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
        return b""  # HTTP_CONTENT_*: CONTENT_TYPE/CONTENT_LENGTH are the ones that count
    return key[5:].lower().replace("_", "-").encode("latin-1")


def _header_keys(environ: dict[str, Any]) -> tuple[tuple[str, bytes], ...]:
    """The environ's request-header keys, in order, with their header names. Worked out
    once per environ shape (its keys, in order): a server builds every environ the same
    way and a client sends the same headers on every request, so the shapes repeat (and
    the one pass over the keys that finds them runs in C)."""
    shape = tuple(environ)
    found = _SHAPES.get(shape)
    if found is None:
        names = _HEADER_NAMES
        pairs = []
        for key in shape:
            name = names.get(key)
            if name is None:
                name = _header_name(key)
                if len(names) < 1024:  # bounded
                    names[key] = name
            if name:
                pairs.append((key, name))
        found = tuple(pairs)
        if len(_SHAPES) < 256:  # bounded
            _SHAPES[shape] = found
    return found


def _port(value: object, default: int | None) -> int | None:
    text = value if type(value) is str else str(value)
    return int(text) if text.isdigit() else default


def build_scope(environ: dict[str, Any]) -> dict[str, Any]:
    """The HTTP scope for one request (without ``state`` and ``extensions``)."""
    get = environ.get
    root_path = get("SCRIPT_NAME", "")
    if not root_path.isascii():
        root_path = _undance(root_path)
    path_info = get("PATH_INFO", "")
    path = root_path + (path_info if path_info.isascii() else _undance(path_info))
    headers = [[name, environ[key].encode("latin-1")] for key, name in _header_keys(environ)]
    append = headers.append
    ctype = get("CONTENT_TYPE")
    if ctype:
        append([b"content-type", ctype.encode("latin-1")])
    clen = get("CONTENT_LENGTH")
    if clen:
        append([b"content-length", clen.encode("latin-1")])

    protocol = get("SERVER_PROTOCOL", "HTTP/1.1")
    http_version = _HTTP_VERSIONS.get(protocol)
    if http_version is None:
        logger.warning("ASGIToWSGI: unknown SERVER_PROTOCOL %r; using HTTP/1.1", protocol)
        http_version = "1.1"

    remote_addr = get("REMOTE_ADDR")
    client = [remote_addr, _port(get("REMOTE_PORT", ""), 0)] if remote_addr else None
    # SERVER_NAME, else SERVER_ADDR (the listening address, what ASGI-www asks for):
    # nginx's uwsgi_params send an empty SERVER_NAME when no server_name is set.
    server_host = get("SERVER_NAME") or get("SERVER_ADDR")
    server = [server_host, _port(get("SERVER_PORT", ""), None)] if server_host else None
    query = get("QUERY_STRING", "")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": SPEC_VERSION},
        "http_version": http_version,
        # PEP 3333 requires REQUEST_METHOD; a caller that leaves it out (a test
        # utility's bare ``{}``, werkzeug's ``run_wsgi_app(app, {})``) gets GET, as
        # werkzeug's own Request reads such an environ, rather than a KeyError.
        "method": get("REQUEST_METHOD", "GET"),
        "scheme": get("wsgi.url_scheme") or "http",
        "path": path,
        "raw_path": _raw_path(environ, path),
        "query_string": query.encode("latin-1") if query else b"",
        "root_path": root_path,
        "headers": headers,
        "client": client,
        "server": server,
    }
