"""The WSGI side of one WSGIToASGI request: ``start_response``, ``write()`` and the
iteration of the response, run in the worker thread (PEP 3333 §The start_response()
Callable, §The write() Callable, §Buffering and Streaming).

``WSGIResponse`` turns what the app does into ASGI messages through ``_w2a.emit``'s
``Emitter``, which hands them to ``_post_send`` (``_w2a.app_thread`` carries them to the
event loop). Its progress is one state of ``_w2a.states`` (start_response called,
headers sent, complete and how), changed only through that module's transition table;
``halt`` is apart from it: set when the client is gone or the request was cancelled
(the iteration stops at the next chunk). ``start_response``'s checks are pure
translation (``_w2a.start``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from .._protocol import NO_BODY_STATUSES, plain_response, status_has_body
from .._types import OptExcInfo
from ..errors import ClientDisconnected, ProtocolError
from .emit import Emitter
from .start import check_start
from .states import (
    DONE,
    END,
    ERROR_PAGE,
    FULL,
    NEXT,
    RESTART,
    START,
    STARTED,
    STREAMING,
    WRITE,
    advance,
    illegal,
)

logger = logging.getLogger("bridgeway")

_ERROR_BODY = b"Internal Server Error"


class WSGIResponse(Emitter):
    """The response of one request as the WSGI app drives it, from the worker thread."""

    __slots__ = ()

    # Implemented by AppThread (``_w2a.app_thread``).
    def _fold_end_into_last_post(self) -> bool:
        raise NotImplementedError

    def _iterate(self, iterable: Iterable[bytes]) -> None:
        if type(iterable) in (list, tuple):
            self._plain_body = True
            if (
                len(iterable) == 1  # type: ignore[arg-type]
                and self._progress is STARTED
            ):
                chunk = iterable[0]  # type: ignore[index]
                if type(chunk) is bytes and chunk:
                    if self._cl is None and not self._no_body_status():
                        # PEP 3333 §Handling the Content-Length Header: len() of a list
                        # or tuple is exact, so a one-element body gets a length instead
                        # of chunking (W2A-RESP-16).
                        self._set_length(len(chunk))
                    if self._cl == len(chunk) and not (self._no_body or self.halt):
                        # The common case: the start and the whole body in one post; a
                        # list has nothing more to pull.
                        self._emit(chunk)
                        return
        try:
            iterator = iter(iterable)
        except TypeError:
            raise ProtocolError(
                f"the WSGI app returned {type(iterable).__name__!r}, which is not an iterable"
                " of bytes (PEP 3333 §Specification Details)"
            ) from None
        for chunk in iterator:
            if self.halt or self._progress >= FULL:  # write() may have ended the response
                if chunk and self._progress is FULL and not self.halt:
                    self._log_excess()
                break
            if type(chunk) is not bytes and not isinstance(chunk, bytes):
                if self._odd_chunk(chunk):
                    break
                continue
            # A body that ended exactly at its Content-Length is pulled once more, as a
            # native WSGI server iterates to the end (gunicorn, waitress, werkzeug): an
            # exception the iterator raises there is the app's, and propagates
            # (ASGIToWSGI raises an ASGI app's error after its final body right there,
            # A2W-SEND-05). Excess bytes stop the iteration at once (W2A-RESP-15).
            if chunk and self._emit(chunk):  # (an empty chunk changes no state)
                break
            if self.halt:
                break
        self._finish()

    def _odd_chunk(self, chunk: object) -> bool:
        """The app yielded something that is not bytes: TypeError, except in a live
        round trip of the same request; True if the iteration stops there."""
        error = TypeError(
            f"the WSGI app yielded {type(chunk).__name__!r}; response body chunks"
            " must be bytes (PEP 3333 §Unicode Issues)"
        )
        stand_in = _stand_in(chunk) if self._defer else None
        if stand_in is None:
            raise error
        # A live round trip of the same request: its WSGI caller gets the very
        # object, and judges it itself (werkzeug's run_wsgi_app passes a str,
        # gunicorn raises); ASGI gets its bytes (_round_trip.RoundTrip.chunk).
        if stand_in and self._emit(stand_in, (chunk, error)):
            return True
        return self.halt

    def _no_body_status(self) -> bool:
        return self._status in NO_BODY_STATUSES

    def _start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        progress = self._progress
        if exc_info is not None:
            try:
                if progress >= STREAMING:
                    # PEP 3333: too late to change the response; re-raise in the app.
                    raise exc_info[1].with_traceback(exc_info[2])  # type: ignore[union-attr]
            finally:
                exc_info = None  # no reference to the failing frame is kept (W2A-RESP-06)
            progress = NEXT[progress][RESTART] or illegal(progress, RESTART)
        else:
            # A second call raises (the table says). Inlined advance(), as below.
            progress = NEXT[progress][START] or illegal(progress, START)
        start_error: BaseException | None = None
        try:
            code, asgi_headers, length = check_start(status, headers, self._strict_headers)
        except (TypeError, ValueError) as exc:
            if not self._defer:
                raise
            # A live round trip of the same request: its WSGI caller gets this start as
            # given and judges it itself (werkzeug's LintMiddleware inside warns); the
            # ASGI stand-in is a bare 500 (_round_trip.RoundTrip.verbatim).
            code, asgi_headers, length, start_error = 500, [], None, exc
        self._start_error = start_error
        self._progress = progress  # taken only now that the call was valid
        self._status = code
        self._headers = asgi_headers
        if self._round is not None:
            self._wsgi_start = (status, headers)
        self._no_body = not status_has_body(code) or self._method == "HEAD"
        if length is None:
            self._cl = self._remaining = None
        else:
            self._headers.append((b"content-length", length.encode()))
            self._cl = self._remaining = int(length)
        return self._write

    def _write(self, data: bytes) -> None:
        """The PEP 3333 write() callable: blocks until send() has taken the bytes."""
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        progress = self._progress
        if progress is not STREAMING and progress is not STARTED:
            if progress is DONE and self._no_body:
                return  # HEAD, 204, 304: body bytes are dropped however they come (HTTP-03)
            # Raises before start_response() and after the response was complete; past
            # the app's own Content-Length (FULL, CUT) the bytes are excess:
            advance(progress, WRITE)
            logger.error(
                "WSGIToASGI: the WSGI app wrote past its Content-Length (%d); the excess"
                " was dropped (PEP 3333 §Handling the Content-Length Header)",
                self._cl,
            )
            return
        if self.halt:
            raise ClientDisconnected("the client disconnected; write() cannot deliver")
        if data:
            self._emit(data)
            self._wait_acks()

    def _finish(self) -> None:
        progress = self._progress
        if self._early is not None and progress is STARTED and not self.halt:
            if self._flush_early():
                return
            progress = self._progress
        if self.halt or progress >= FULL:
            return
        if self._remaining and not self._no_body:
            raise ProtocolError(
                f"the WSGI app sent fewer bytes than its Content-Length ({self._cl});"
                " the response is aborted (PEP 3333 §Handling the Content-Length Header)"
            )
        # Raises if the app returned without calling start_response().
        self._progress = NEXT[progress][END] or illegal(progress, END)
        if progress is STARTED:
            self._post_send([*self._start_messages(), {"type": "http.response.body"}])
        elif not self._fold_end_into_last_post():
            self._post_send([{"type": "http.response.body"}])

    def _fail(self, exc: BaseException) -> BaseException | None:
        """An exception escaped the app, its iterable or a protocol check: the error to
        raise out of the ASGI call, or None (W2A-RESP-12; the table in
        docs/wsgi-to-asgi.md says where it surfaces in each case)."""
        if self.halt:
            # The client is gone or the request was cancelled; errors from here on are
            # its consequence, not the app's failure (ASGI-www §Disconnect).
            logger.debug("WSGIToASGI: WSGI app stopped after the client left: %r", exc)
            return None
        started = self._progress >= STREAMING  # headers sent, or complete
        if self._propagate:
            # As a2wsgi and Starlette's middleware: nothing of the failed response is
            # sent; the exception leaves the ASGI call, and whoever is above answers as
            # it does for any ASGI app that raised: the server a generic 500 (or an
            # abort once the response started, since no more_body=False was sent),
            # ServerErrorMiddleware its error page, TestClient re-raises. The server
            # logs it, so bridgeway does not (one traceback in the log).
            return exc
        if not started:
            logger.error(
                "WSGIToASGI: the WSGI app raised before sending headers; answered 500",
                exc_info=exc,
            )
            self._progress = advance(self._progress, ERROR_PAGE)
            self._post_send(plain_response(500, _ERROR_BODY))
            return None
        logger.error(
            "WSGIToASGI: the WSGI app raised after the response headers were sent;"
            " the response is aborted",
            exc_info=exc,
        )
        # Returning without more_body=False: every ASGI server takes the response as
        # incomplete and closes the connection, so a truncated body is never taken
        # for a complete one (ASGI-www §Response Body).
        return None

    def _close_failed(
        self, exc: BaseException, error: BaseException | None
    ) -> BaseException | None:
        """close() raised: the error to raise out of the ASGI call, or None. It
        propagates like the app's own errors (a2wsgi does the same; a WSGI server logs
        it) unless an earlier error already does, or the client is gone; the response
        is already posted whole, so it cannot change it."""
        if error is None and self._propagate and not self.halt:
            return exc
        logger.error("WSGIToASGI: close() of the WSGI response iterable raised", exc_info=exc)
        return error


def _stand_in(chunk: object) -> bytes | None:
    """The bytes that stand in, on the ASGI side, for a chunk that is not ``bytes``: a
    ``str`` as UTF-8, a buffer's bytes; None for anything else (refused as always)."""
    if isinstance(chunk, str):
        return chunk.encode("utf-8", "surrogatepass")  # never raises
    try:
        return memoryview(chunk).tobytes()  # type: ignore[arg-type]
    except TypeError:
        return None
