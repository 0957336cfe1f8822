"""What a live round trip carries past WSGI: ``WSGIToASGI(... ASGIToWSGI(app))`` in one
process, with only WSGI middleware (or nothing) in between. Pure translation, no I/O.

A WSGI environ loses part of the request (repeated headers are joined, names with
``_`` are dropped, W2A-ENV-11/12; ``%2F`` and a ``root_path`` outside ``path`` cannot be
told apart), and a WSGI response cannot carry ASGI's trailers or debug messages
(EXT-08). Inside a live round trip (``_upstream.upstream_of``: the ASGIToWSGI is called
in the thread WSGIToASGI runs its WSGI app in) none of that has to be lost:

* **Request.** The server's scope is at hand, with the environ WSGIToASGI built from it.
  Where the environ keys that describe a part of the request are exactly as
  WSGIToASGI made them (no WSGI middleware changed them), the ASGI app gets that part
  of the server's own scope, as it would natively; where middleware changed any of
  them (a header added or rewritten, ``PATH_INFO`` routed, ``REMOTE_ADDR`` fixed by a
  proxy middleware) the environ wins, as today. The underscore rule (W2A-ENV-12) still
  protects the WSGI app in between, which sees the environ; the ASGI app gets the raw
  names, which cannot be confused with ``-`` ones there.
* **Request body.** While ``wsgi.input`` is WSGIToASGI's own and ``CONTENT_LENGTH``
  unchanged, the app reads the server's body messages as they came (``carry_body``).
* **Response.** When the server's scope advertises ``http.response.trailers`` or
  ``http.response.debug``, ASGIToWSGI advertises it too, and the messages go into a
  ``Carried`` on WSGIToASGI's request: it sends the debug message around its own
  ``http.response.start``, marks that start ``trailers: True`` when the app's was, and
  sends the app's trailers after its final body, as the app sent them.
* **The start.** When ASGIToWSGI was given WSGIToASGI's own ``start_response`` (no
  WSGI middleware wraps it: a *direct* round trip), the app's start goes out when the
  app sends it and then waits for something, not only with the first body bytes.

* **A bare round trip.** When WSGIToASGI calls the ASGIToWSGI itself (no WSGI middleware
  at all; the app runs on the server's loop), what WSGI cannot carry in order reaches
  the server's ``send()`` from the app's own ``send()``, which waits for it and raises
  what it raised: trailers, empty body messages, a message that breaks the response
  cycle (the server judges it; bridgeway's ``ProtocolError`` only if it took it), and
  an app that sent nothing makes WSGIToASGI send nothing (``silent``). The mechanics
  are ``_a2w.forward``'s (``Forwarding._pass_on``) and ``_w2a.trip``'s
  (``TripResponse.send_nested``).

All of this holds whether the app runs on the server's loop (``_a2w.nested``: a direct
round trip, or ``lifespan="off"``) or on a loop of ASGIToWSGI's pool (behind WSGI
middleware, with a lifespan of its own); both call ``Request.carry_from``.
"""

from __future__ import annotations

import threading
from typing import Any

from ._scope import _header_keys
from ._types import Message, Scope
from ._upstream import Upstream

TRAILERS = "http.response.trailers"
DEBUG = "http.response.debug"

# The environ keys each part of the scope is derived from (besides the headers).
_TARGET_KEYS = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "RAW_URI")
_TARGET_FIELDS = ("path", "raw_path", "root_path", "query_string")
_PEER_KEYS = (
    "wsgi.url_scheme",
    "HTTPS",
    "SERVER_NAME",
    "SERVER_PORT",
    "REMOTE_ADDR",
    "REMOTE_PORT",
)
_PEER_FIELDS = ("scheme", "server", "client")


class Carried:
    """What one round trip carries beside the WSGI response. Written by ASGIToWSGI (its
    ``send()``, on its loop), read by WSGIToASGI's worker thread: when the WSGI app
    call returns (``early_start``), before its start message (which it builds only after
    ASGIToWSGI called ``start_response``), and after the WSGI iterable was closed, once
    ``finished`` is set (the app's last trailers message came, or the app ended)."""

    __slots__ = (
        "after_body",
        "after_start",
        "bare",
        "before_start",
        "debug",
        "direct",
        "early_start",
        "final",
        "finished",
        "last",
        "silent",
        "trailers",
        "trailers_done",
        "trailers_ok",
    )

    def __init__(self, debug: bool, trailers_ok: bool, direct: bool) -> None:
        self.debug = debug  # the server takes http.response.debug
        self.trailers_ok = trailers_ok  # ... and http.response.trailers
        self.direct = direct  # ASGIToWSGI was given WSGIToASGI's own start_response
        self.early_start = False  # ... and called it at the app's http.response.start
        self.before_start: list[Message] = []  # debug messages before the app's start
        self.after_start: list[Message] = []  # ... and between its start and its body
        self.trailers = False  # the app's start said trailers=True (and the server takes them)
        self.final = False  # the app sent its final body message
        self.trailers_done = False  # its last trailers message (more_trailers=False) came
        self.after_body: list[Message] = []  # its trailers messages, in order
        self.finished: threading.Event | None = None  # made when trailers are announced
        # The app runs on the server's loop and WSGIToASGI calls its ASGIToWSGI with
        # no WSGI middleware in between (_a2w.nested): what WSGI cannot carry in order
        # (an empty body message, trailers, a message that breaks the response cycle)
        # goes to the server's send() as the app sent it, and the app's send() waits
        # for it and raises what it raised ("A bare round trip" above).
        self.bare = False
        self.last = False  # the chunk ASGIToWSGI yields now is its app's final body
        self.silent = False  # the app returned without sending anything: WSGIToASGI neither

    def announce_trailers(self) -> None:
        self.trailers = True
        self.finished = threading.Event()

    def finish(self) -> None:
        """No trailers will follow (the last came, the app ended, or the client left)."""
        if self.finished is not None:
            self.finished.set()


def _unchanged(environ: dict[str, Any], original: dict[str, Any], keys: tuple[str, ...]) -> bool:
    get, was = environ.get, original.get
    return all(get(key) == was(key) for key in keys)


def _headers_unchanged(environ: dict[str, Any], original: dict[str, Any]) -> bool:
    """Every request-header key (HTTP_*, CONTENT_TYPE, CONTENT_LENGTH) is as
    WSGIToASGI made it: none added, removed or rewritten."""
    if environ.get("CONTENT_TYPE") != original.get("CONTENT_TYPE") or environ.get(
        "CONTENT_LENGTH"
    ) != original.get("CONTENT_LENGTH"):
        return False
    keys = _header_keys(environ)  # cached per environ shape: cheap for both
    if keys != _header_keys(original):
        return False
    return all(environ[key] == original[key] for key, _ in keys)


def carry_request(scope: dict[str, Any], environ: dict[str, Any], trip: Upstream) -> None:
    """Give ``scope`` (built from ``environ``) what the server's scope says where the
    environ still says what WSGIToASGI made it say."""
    server: Scope = trip.scope
    original = trip.environ
    if _headers_unchanged(environ, original):
        # Repeats as separate items, names with "_", the order: as the server gave them
        # (ASGI-www §HTTP Connection Scope). A copy: the app may change its list.
        scope["headers"] = list(server["headers"])
    if _unchanged(environ, original, _TARGET_KEYS):
        for field in _TARGET_FIELDS:
            if field in server:
                scope[field] = server[field]
    if environ.get("SERVER_PROTOCOL") == original.get("SERVER_PROTOCOL") and server.get(
        "http_version"
    ):
        scope["http_version"] = server["http_version"]
    if _unchanged(environ, original, _PEER_KEYS):
        for field in _PEER_FIELDS:
            if field in server:
                scope[field] = server[field]


def carry_body(environ: dict[str, Any], trip: Upstream) -> bool:
    """Whether the app may read the request body as the server sent it: ``wsgi.input``
    is still WSGIToASGI's own (it ends where the server's body ends,
    ``wsgi.input_terminated``) and ``CONTENT_LENGTH`` is unchanged. Then it is read to
    its end, message by message, rather than framed by ``CONTENT_LENGTH`` in chunks of
    ``chunk_size``: the app gets the server's messages, a body longer than its
    ``Content-Length`` too, as natively (an ASGI server passes on what its HTTP parser
    accepted; a test client passes on anything)."""
    original = trip.environ
    return environ.get("wsgi.input") is original.get("wsgi.input") and environ.get(
        "CONTENT_LENGTH"
    ) == original.get("CONTENT_LENGTH")


def carry_response(
    extensions: dict[str, Any], trip: Upstream, start_response: object
) -> Carried | None:
    """Advertise in ``extensions`` what the server's scope offers and WSGI cannot carry
    (trailers, debug), and give ``trip``'s WSGIToASGI request (``trip.cycle``) the
    ``Carried`` its messages go into. None when
    there is nothing to carry: nothing more is advertised, as without a round trip.

    ``start_response`` is WSGIToASGI's own (no WSGI middleware in between wraps it):
    then the app's ``http.response.start`` can go out when the app sends it, as its
    server sends it natively, instead of with the first body bytes (PEP 3333's rule for
    a WSGI server, which protects middleware that may still replace the response; there
    is none)."""
    offered = trip.scope.get("extensions") or {}
    debug, trailers = DEBUG in offered, TRAILERS in offered
    cycle = trip.cycle
    direct = getattr(start_response, "__self__", None) is cycle
    if not (debug or trailers or direct):
        cycle.carried = None
        return None
    if debug:
        extensions[DEBUG] = {}
    if trailers:
        extensions[TRAILERS] = {}
    # A new one per call: WSGI middleware that calls the app again carries the last.
    carried = cycle.carried = Carried(debug, trailers, direct)
    return carried
