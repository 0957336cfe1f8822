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


# The environ keys that describe the HTTP request itself: WSGIToASGI takes them from the
# scope alone (an ASGI middleware may have changed the request), never from an upstream
# environ (``inherit_upstream``). HTTP_* keys are left out by prefix.
_REQUEST_KEYS = frozenset(
    {
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "REMOTE_HOST",
        "REQUEST_URI",
        "RAW_URI",
        "HTTPS",
    }
)

# Upstream keys whose contract ties them to the thread that called the app, which under
# WSGIToASGI is not the thread that runs it. werkzeug's test client (and Flask's
# ``with client:``) collects the app's context objects through this callback and enters
# them again in the caller's thread: passed as it is, the same Flask context objects
# would be pushed in two contexts at once, and a streamed response that pops them in
# the app's thread raises ValueError ("created in a different Context") and leaks the
# caller's request context. WSGIToASGI gives the app a callback of its own instead and
# hands the objects on only when that cannot happen (``_w2a.cycle.HTTPCycle._end``).
_THREAD_BOUND = frozenset({"werkzeug.debug.preserve_context"})

_ENV_KEYS: dict[bytes, str] = {}


def _env_key(raw_name: bytes) -> str:
    """The environ key of a header name; prefixed with "_" when the name has one."""
    name = raw_name.decode("latin-1").lower()
    if name == "content-type":
        return "CONTENT_TYPE"
    if name == "content-length":
        return "CONTENT_LENGTH"
    key = "HTTP_" + name.upper().replace("-", "_")
    return "_" + key if "_" in name else key


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
    """Everything of the environ that comes from the scope (``wsgi.input``,
    ``wsgi.errors`` and ``wsgi.file_wrapper`` are added by the adapter).
    ``check_length=False``: an invalid or conflicting Content-Length leaves
    ``CONTENT_LENGTH`` out (the body is read to its end: ``wsgi.input_terminated``)
    instead of raising ``BadRequest``."""
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
    raw_path = scope.get("raw_path")
    if raw_path:
        uri = raw_path.decode("latin-1")
        if query and "?" not in uri:
            uri = uri + "?" + environ["QUERY_STRING"]
        environ["REQUEST_URI"] = environ["RAW_URI"] = uri
    if scheme in ("https", "wss"):
        environ["HTTPS"] = "on"

    # Headers, in one linear pass (W2A-ENV-22): a dict of lists only for repeats.
    repeats: dict[str, list[str]] | None = None
    chunked = bad_length = False
    keys = _ENV_KEYS
    for raw_name, raw_value in scope["headers"]:
        key = keys.get(raw_name)
        if key is None:
            key = _env_key(raw_name)
            if len(keys) < 512:  # a bounded cache: header names repeat
                keys[raw_name] = key
        value = raw_value.decode("latin-1").strip(" \t")
        if key == "CONTENT_TYPE":
            pass
        elif key == "CONTENT_LENGTH":
            old = environ.get("CONTENT_LENGTH")
            if old is not None and old != value:
                if check_length:
                    raise BadRequest("conflicting Content-Length headers")
                bad_length = True
            if parse_content_length(value) is None:
                if check_length:
                    raise BadRequest(f"invalid Content-Length {value!r}")
                bad_length = True
            environ["CONTENT_LENGTH"] = value
            continue
        elif key[0] == "_":
            # A name with "_": nginx, Apache and gunicorn drop these too, so that
            # "X_Forwarded_For" cannot spoof or merge into X-Forwarded-For (W2A-ENV-12).
            if not keep_underscore_headers:
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
            if max_header_repeats is not None and len(values) > max_header_repeats:
                raise BadRequest(f"more than {max_header_repeats} {key!r} header lines")
        else:
            environ[key] = value
    if repeats:
        for key, values in repeats.items():
            # RFC 9110 §5.3 allows joining repeats with commas; cookies use "; "
            # (RFC 9113 §8.2.3). The comma without a space matches gunicorn and wsgiref.
            environ[key] = ("; " if key == "HTTP_COOKIE" else ",").join(values)
    if chunked or bad_length:
        # Transfer-Encoding overrides Content-Length (RFC 9112 §6.3): the body is
        # whatever the server de-chunked, so no length is announced (HTTP-06). An
        # invalid one is left out when the server judges it (check_length).
        environ.pop("CONTENT_LENGTH", None)

    server = scope.get("server")
    if server and server[1] is not None:
        environ["SERVER_NAME"] = str(server[0])
        environ["SERVER_PORT"] = str(server[1])
    else:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = _server_from_host(
            environ.get("HTTP_HOST"), scheme
        )
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        if client[1] is not None:
            environ["REMOTE_PORT"] = str(client[1])
    state = scope.get("state")
    if state is not None:
        environ["asgi.state"] = state
    return environ


def inherit_upstream(environ: dict[str, Any], upstream: dict[str, Any], *, errors: bool) -> None:
    """Give ``environ`` what the WSGI server and middleware above an ASGIToWSGI in this
    process put in their environ and no ASGI scope can carry (see
    ``_context.upstream_environ``), as a WSGI app behind plain WSGI middleware would see
    it: extension keys (``gunicorn.socket``, ``beaker.session``, what werkzeug's test
    client puts in through ``environ_overrides``; PEP 3333 §environ Variables: "server
    or gateway-defined" variables) and non-request CGI variables (``REMOTE_USER``, ``AUTH_TYPE``,
    ``SSL_*``). Not the request itself (``_REQUEST_KEYS``, ``HTTP_*``: the scope is the
    truth, and drops what it dropped), not the ``wsgi.*`` keys (WSGIToASGI is this app's
    server), except, when ``errors``, the server's ``wsgi.errors``, so the app logs
    where the server's other apps do; not the keys bound to the calling thread
    (``_THREAD_BOUND``). Keys already set are kept."""
    for key, value in upstream.items():
        if key in environ:
            if errors and key == "wsgi.errors":
                environ[key] = value
            continue
        if key in _REQUEST_KEYS or key in _THREAD_BOUND or key.startswith(("HTTP_", "wsgi.")):
            continue
        environ[key] = value


# The request target as a WSGI server writes it, which the scope cannot always say again:
# ``PATH_INFO`` need not start with "/" under a ``SCRIPT_NAME`` (werkzeug's test client
# passes "foo" under "/app"; the scope's ``path`` is then "/appfoo", outside its
# ``root_path``), and ``REQUEST_URI`` keeps a "?" with nothing after it (ASGI's
# ``query_string`` is b"" either way).
_TARGET_KEYS = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "RAW_URI")


def take_request_target(environ: dict[str, Any], upstream: dict[str, Any]) -> None:
    """Give ``environ`` the request target of ``upstream``, the environ an ASGIToWSGI
    of this process built this very scope from (its target unchanged on the way:
    ``_round_trip.RoundTrip.same_request``), as a WSGI app behind plain WSGI middleware
    would see it. Only ``str`` values are taken (PEP 3333 §environ Variables)."""
    for key in _TARGET_KEYS:
        value = upstream.get(key)
        if type(value) is str:
            environ[key] = value
        elif key in ("REQUEST_URI", "RAW_URI"):
            environ.pop(key, None)  # the server did not set it


# What WSGIToASGI owns even in a live round trip of the same request: the stream the
# app reads (and whether it ends at EOF), the file wrapper that streams through this
# adapter, and the request's scheme (from the scope, as the other request keys).
# ``wsgi.errors`` is left to ``inherit_upstream`` (the server's, unless ``errors=``).
_OWN_WSGI_KEYS = frozenset(
    {"wsgi.input", "wsgi.input_terminated", "wsgi.file_wrapper", "wsgi.errors", "wsgi.url_scheme"}
)


def take_server_keys(environ: dict[str, Any], upstream: dict[str, Any]) -> None:
    """Give ``environ`` the other ``wsgi.*`` keys of ``upstream``, the environ of the
    very request this scope was built from (``_round_trip.RoundTrip.same_request``):
    ``wsgi.version``, ``wsgi.multithread``, ``wsgi.multiprocess``, ``wsgi.run_once``
    and the server's own, as a WSGI app behind plain WSGI middleware sees its server's
    (werkzeug's LintMiddleware inside checks them). Its extension keys were taken by
    ``inherit_upstream``; WSGIToASGI keeps what it owns (``_OWN_WSGI_KEYS``)."""
    for key, value in upstream.items():
        if key.startswith("wsgi.") and key not in _OWN_WSGI_KEYS:
            environ[key] = value
