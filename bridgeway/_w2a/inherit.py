"""What a WSGIToASGI request served inside a bridgeway ASGIToWSGI of this process (the
in-process round trip, ``_round_trip``) takes from that request's environ. Pure, no I/O.

``_w2a.environ.build_environ`` builds the environ from the scope alone, as for any ASGI
server. In a live round trip the WSGI server and middleware above the ASGIToWSGI put
more in their environ than a scope can carry; ``_w2a.cycle.HTTPCycle.run`` hands it on
here, as plain WSGI middleware would (PEP 3333 §environ Variables):

* ``inherit_upstream``: the extension keys and non-request CGI variables, for any
  request made inside that one (never the request itself: the scope is the truth);
* ``take_request_target`` and ``take_server_keys``: for the very request the WSGI caller
  made (``_round_trip.RoundTrip.same_request``), its request target as the server wrote
  it and its server's ``wsgi.*`` keys.
"""

from __future__ import annotations

from typing import Any

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
# hands the objects on only when that cannot happen (``_w2a.trip.TripResponse.hand_over``).
_THREAD_BOUND = frozenset({"werkzeug.debug.preserve_context"})


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
