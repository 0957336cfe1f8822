"""Building a PEP 3333 environ from an ASGI HTTP scope. Pure translation, no I/O.

The rules come from the ASGI spec's "WSGI Compatibility" and "WSGI encoding differences"
sections and from PEP 3333 §environ Variables / §Unicode Issues:

* paths become the UTF-8 bytes of the request path, one ``str`` character per byte
  (the latin-1 "encoding dance"), so ``PATH_INFO.encode("latin-1").decode("utf-8")``
  gives the path back;
* ``SCRIPT_NAME`` is ``root_path`` and ``PATH_INFO`` is ``path`` with ``root_path``
  removed **only on a segment boundary** (W2A-ENV-04);
* header values are decoded as latin-1; duplicates are joined with ``,`` (``Cookie``
  with ``; ``); header names containing ``_`` are dropped by default (W2A-ENV-12).

Per request, so kept cheap: one dict literal, one pass over the headers with a cache of
their environ keys (``_add_headers``), a helper call only for what is rare (a repeated
header, a name not seen before). What a request served inside a bridgeway ASGIToWSGI of
this process takes from that request's environ is ``_w2a.inherit``'s.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from .._protocol import parse_content_length
from .._types import Scope
from ..errors import BadRequest

_PROTOCOLS = {
    "1.0": "HTTP/1.0",
    "1.1": "HTTP/1.1",
    "1": "HTTP/1.0",  # granian reports HTTP/1.0 as "1" (W2A-ENV-15)
    "2": "HTTP/2",
    "2.0": "HTTP/2",
    "3": "HTTP/3",
}


def _dance(text: str) -> str:
    """A unicode path as WSGI wants it: its UTF-8 bytes, one character per byte."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def split_path(scope: Scope) -> tuple[str, str]:
    """Return ``(SCRIPT_NAME, PATH_INFO)`` for a scope (W2A-ENV-03..07, W2A-ENV-20)."""
    path: str = scope["path"]
    if path == "*":  # asterisk-form target (RFC 9112 §3.2.4): no prefix logic at all
        return "", "*"
    raw_path = scope.get("raw_path")
    full = None
    if raw_path:
        # raw_path wins when it agrees with path: /%FF then reaches the app as "\xff",
        # as under gunicorn, instead of the "\ufffd" that path holds (W2A-ENV-06).
        # Query strings are not part of raw_path (ASGI-www), but some servers leave them.
        raw = raw_path.split(b"?", 1)[0]
        decoded = unquote_to_bytes(raw) if b"%" in raw else raw
        if decoded.decode("utf-8", "replace") == path:
            full = decoded.decode("latin-1")
    if full is None:
        full = _dance(path)
    root = _dance(scope.get("root_path") or "").rstrip("/")
    if not root:
        return "", full
    if full == root:
        return root, ""
    if full.startswith(root) and full[len(root)] == "/":
        return root, full[len(root) :]
    # path does not carry root_path (daphne, granian, or a proxy that stripped it):
    # pass it through whole rather than cutting mid-segment (the a2wsgi #40 bug).
    return root, full


_ENV_KEYS: dict[bytes, str] = {}


def _env_key(raw_name: bytes) -> str:
    """The environ key of a header name; prefixed with "_" when the name has one.
    Kept in a bounded cache: header names repeat."""
    name = raw_name.decode("latin-1").lower()
    if name == "content-type":
        key = "CONTENT_TYPE"
    elif name == "content-length":
        key = "CONTENT_LENGTH"
    else:
        key = "HTTP_" + name.upper().replace("-", "_")
        if "_" in name:
            key = "_" + key
    if len(_ENV_KEYS) < 512:
        _ENV_KEYS[raw_name] = key
    return key


def _server_from_host(host: str | None, scheme: str) -> tuple[str, str]:
    default_port = "443" if scheme in ("https", "wss") else "80"
    if not host:
        return "localhost", default_port
    if host.startswith("["):  # IPv6 literal
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.partition(":")
    return name or "localhost", port if port.isdigit() else default_port


def build_environ(
    scope: Scope,
    *,
    multiprocess: bool = False,
    keep_underscore_headers: bool = False,
    max_header_repeats: int | None = 100,
    check_length: bool = True,
) -> dict[str, Any]:
    """Everything of the environ that comes from the scope (the adapter adds ``wsgi.input``,
    ``wsgi.errors``, ``wsgi.file_wrapper``). ``check_length=False``: an invalid or conflicting
    Content-Length leaves ``CONTENT_LENGTH`` out (the body is read to its end:
    ``wsgi.input_terminated``) instead of raising ``BadRequest``."""
    script_name, path_info = split_path(scope)
    query = scope.get("query_string", b"")
    scheme = scope.get("scheme") or "http"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": query.decode("latin-1") if query else "",
        "SERVER_PROTOCOL": _PROTOCOLS.get(scope.get("http_version", "1.1"), "HTTP/1.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    if raw_path := scope.get("raw_path"):
        uri = raw_path.decode("latin-1")
        if query and "?" not in uri:
            uri = uri + "?" + environ["QUERY_STRING"]
        environ["REQUEST_URI"] = environ["RAW_URI"] = uri
    if scheme in ("https", "wss"):
        environ["HTTPS"] = "on"
    _add_headers(environ, scope, keep_underscore_headers, max_header_repeats, check_length)
    server = scope.get("server")
    if server and server[1] is not None:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = str(server[0]), str(server[1])
    else:
        host = environ.get("HTTP_HOST")
        environ["SERVER_NAME"], environ["SERVER_PORT"] = _server_from_host(host, scheme)
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        if client[1] is not None:
            environ["REMOTE_PORT"] = str(client[1])
    if (state := scope.get("state")) is not None:
        environ["asgi.state"] = state
    return environ


def _add_headers(
    environ: dict[str, Any],
    scope: Scope,
    keep_underscore: bool,
    max_repeats: int | None,
    check_length: bool,
) -> None:
    """The headers into ``environ`` in one linear pass (W2A-ENV-22; see build_environ)."""
    repeats: dict[str, list[str]] | None = None
    chunked = bad_length = False
    keys = _ENV_KEYS
    for raw_name, raw_value in scope["headers"]:
        key = keys.get(raw_name) or _env_key(raw_name)
        value = raw_value.decode("latin-1").strip(" \t")
        if key == "CONTENT_TYPE":
            pass
        elif key == "CONTENT_LENGTH":
            old = environ.get("CONTENT_LENGTH")
            if (old is not None and old != value) or parse_content_length(value) is None:
                if check_length:
                    raise BadRequest(_length_problem(old, value))
                bad_length = True
            environ["CONTENT_LENGTH"] = value
            continue
        elif key[0] == "_":
            # nginx, Apache, gunicorn drop it too: no "X_Forwarded_For" spoofing (W2A-ENV-12)
            if not keep_underscore:
                continue
            key = key[1:]
        elif key == "HTTP_TRANSFER_ENCODING":
            chunked = True
        if key in environ:
            if repeats is None:
                repeats = {}
            values = repeats.get(key)
            if values is None:
                values = repeats[key] = [environ[key]]
            values.append(value)
            if max_repeats is not None and len(values) > max_repeats:
                raise BadRequest(f"more than {max_repeats} {key!r} header lines")
        else:
            environ[key] = value
    if repeats:
        for key, values in repeats.items():
            # RFC 9110 §5.3 allows joining repeats with commas (without a space, as gunicorn
            # and wsgiref); cookies use "; " (RFC 9113 §8.2.3).
            environ[key] = ("; " if key == "HTTP_COOKIE" else ",").join(values)
    if chunked or bad_length:
        # Transfer-Encoding overrides Content-Length (RFC 9112 §6.3, HTTP-06): no length;
        # an invalid one is left out when the server judges it (check_length).
        environ.pop("CONTENT_LENGTH", None)


def _length_problem(old: str | None, value: str) -> str:
    if old is not None and old != value:
        return "conflicting Content-Length headers"
    return f"invalid Content-Length {value!r}"
