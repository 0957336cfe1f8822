"""The in-process round trip seen from the WSGI side: a WSGI server calls a bridgeway
``ASGIToWSGI`` whose ASGI app (directly, or behind ASGI middleware) is a bridgeway
``WSGIToASGI`` of the same process, serving the same request.

``ASGIToWSGI`` makes one ``RoundTrip`` per request and puts it in the context its ASGI
app runs in (``_context.round_trip``); a ``WSGIToASGI`` called from that app (in its
task, or a task or thread it started) finds it there, and nowhere else. Through it the
two ends hand each other what an ASGI scope or message cannot carry, so the inner WSGI
app and the outer WSGI server see each other as they would with no bridge at all:

* the request as the WSGI server wrote it (``PATH_INFO`` without a leading slash,
  ``REQUEST_URI`` with an empty query after ``?``), when the scope the WSGIToASGI got is
  the one ASGIToWSGI built (``same_request``); what an ASGI middleware in between
  changed wins;
* the response as the WSGI app wrote it: its status line with its own reason phrase
  (``404 NOT FOUND``; ASGI has only the code, ASGI-www §WSGI Compatibility) and its
  header list with the names' case, when the start message ASGIToWSGI receives is the
  very one WSGIToASGI sent, unchanged (``verbatim``);
* what the WSGI app did that its WSGI caller judges itself, natively, when the request
  is the same one (``deferred``): a status line or header list that does not parse, a
  chunk that is not ``bytes`` (a ``str``), a chunk yielded before ``start_response``.
  WSGIToASGI sends ASGI stand-ins for them and records, besides, what the app gave and
  the error it would have raised; ASGIToWSGI hands the caller what the app gave if
  the stand-in reaches it unchanged, and raises that error (the old check, W2A-RESP-01,
  02, 11, 12) if an ASGI middleware in between changed or replaced it;
* the context objects the app hands to werkzeug's ``preserve_context`` callback (Flask's
  ``with client:``), handed on by WSGIToASGI once the app's thread is done with them
  (``_w2a.trip.TripResponse._hand_over_preserved``), only for the same request;
* the server's ``close()`` of a response it closed early returns once the app's own
  ``close()`` ran, when the app's thread was parked between chunks (``parked``,
  ``_a2w.iteration.Iteration._await_inner_close``).

Pure bookkeeping, no I/O. The WSGIToASGI side writes (in the app's thread, before it
posts the message concerned to the loop), the ASGIToWSGI side reads (on the loop or in
the server's thread, after that message arrived), so no lock is needed.
"""

from __future__ import annotations

from typing import Any

from ._scope import build_scope
from ._types import Message, Scope
from .errors import BadRequest

# The parts of a scope that describe the request target: what ``same_request`` compares.
_TARGET = ("method", "path", "raw_path", "query_string", "root_path")

# werkzeug's test client (and Flask's ``with client:``) puts this callback in the
# environ: the app hands it the context objects to keep for the caller's thread.
PRESERVE_CONTEXT = "werkzeug.debug.preserve_context"


class RoundTrip:
    """One ASGIToWSGI request, for a WSGIToASGI inside its ASGI app."""

    __slots__ = ("chunks", "environ", "error", "parked", "response")

    def __init__(self, environ: dict[str, Any]) -> None:
        # Made for every ASGIToWSGI request: nothing more than this is done until a
        # WSGIToASGI inside finds it.
        self.environ = environ  # the WSGI server's environ (read, never written)
        # (start message, its status and headers as sent, WSGI status line, headers)
        self.response: tuple[Message, int, list[Any], str, list[Any]] | None = None
        # The check a malformed start failed, raised if it did not reach us verbatim.
        self.error: BaseException | None = None
        # id(body message) -> (message, its stand-in body, the app's chunk, the error the
        # chunk is, outside a verbatim trip); made at the first such chunk.
        self.chunks: dict[int, tuple[Message, bytes, Any, BaseException]] | None = None
        # The WSGI app's thread waits for the loop between two chunks (no app code
        # running): told the client left, it closes the app's iterable at once.
        self.parked = False

    def same_request(self, scope: Scope) -> bool:
        """Whether ``scope`` describes the request ASGIToWSGI built from the environ,
        its target unchanged on the way (built again here, only for a round trip:
        ``build_scope`` is pure)."""
        try:
            built = build_scope(self.environ)
        except BadRequest:  # pragma: no cover - ASGIToWSGI answered 400 before
            return False
        return all(scope.get(key) == built.get(key) for key in _TARGET)

    def sent(
        self,
        message: Message,
        status_line: str,
        headers: list[Any],
        error: BaseException | None = None,
    ) -> None:
        """WSGIToASGI sends ``message`` for the WSGI app's ``start_response(status_line,
        headers)``; ``error``: what that call did not pass (``message`` is a stand-in)."""
        self.response = (message, message["status"], list(message["headers"]), status_line, headers)
        self.error = error

    def deferred(self, message: Message, chunk: Any, error: BaseException) -> None:
        """WSGIToASGI sends body ``message`` as a stand-in for ``chunk``, which it would
        have refused with ``error`` (it is not ``bytes``, or came before the start)."""
        if self.chunks is None:
            self.chunks = {}
        self.chunks[id(message)] = (message, message["body"], chunk, error)

    def chunk(self, message: Message, verbatim: bool, final: bool) -> Any:
        """The app's own chunk for body ``message`` (None: the message's body is it).
        ``verbatim``: the response's start reached ASGIToWSGI unchanged; ``final``:
        ``message`` ends the body. Raises the deferred error when a stand-in did not
        arrive as sent: at once if it came changed, at the end if it never came (a
        middleware sent other messages in its place)."""
        chunks = self.chunks
        if not chunks:
            return None
        entry = chunks.pop(id(message), None)
        if entry is not None and entry[0] is message:
            if verbatim and message.get("body") is entry[1]:
                return entry[2]
        elif not (final and chunks):
            return None
        else:
            entry = next(iter(chunks.values()))  # the first stand-in that never came
        self.chunks = None  # one error: the WSGI side stops at it
        raise entry[3]

    def verbatim(self, message: Message) -> tuple[str, list[tuple[str, str]]] | None:
        """The WSGI app's own status line and headers, when ``message`` is the start
        message WSGIToASGI sent for them and nothing in between changed it."""
        response, error = self.response, self.error
        if response is None or response[0] is not message:
            changed = True
        else:
            _, status, headers, line, wsgi_headers = response
            changed = message["status"] != status or list(message.get("headers", ())) != headers
        if not changed:
            return line, list(wsgi_headers)  # as given, checked by WSGIToASGI unless error
        if error is not None:
            # The app's start did not pass WSGIToASGI's check, and the middleware in
            # between got the stand-in: raised now, once (a middleware may answer it).
            self.response = self.error = None
            raise error
        return None
