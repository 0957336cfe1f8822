"""The WSGI side of one WSGIToASGI request: ``start_response``, ``write()`` and the
iteration of the response, run in the worker thread (PEP 3333 §The start_response()
Callable, §The write() Callable, §Buffering and Streaming).

``WSGIResponse`` turns what the app does into ASGI messages and hands them to
``post_send`` (implemented by ``HTTPCycle``, which carries them to the event loop). Its
progress is one state of ``_w2a.states`` (start_response called, headers sent, complete
and how), changed only through that module's transition table; ``halt`` is apart from
it: set when the client is gone or the request was cancelled (the iteration stops at
the next chunk).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._headers import (
    WSGI_LENGTH_NAMES,
    WSGI_PAIRS,
    check_wsgi_header,
    is_hop_by_hop,
    parse_wsgi_status,
    remember_wsgi_length_name,
    remember_wsgi_pair,
)
from .._protocol import NO_BODY_STATUSES, parse_content_length, plain_response, status_has_body
from .._types import Message, OptExcInfo
from ..errors import ClientDisconnected, ProtocolError
from .states import (
    CHUNK,
    DONE,
    END,
    ERROR_PAGE,
    EXACT,
    EXCESS,
    FULL,
    IDLE,
    NEXT,
    RESTART,
    START,
    STARTED,
    STREAMING,
    WRITE,
    advance,
    illegal,
)

if TYPE_CHECKING:
    from .._round_trip import RoundTrip

logger = logging.getLogger("bridgeway")

_ERROR_BODY = b"Internal Server Error"


class WSGIResponse:
    """The response state of one request, driven from the worker thread."""

    __slots__ = (
        "_cl",
        "_defer",
        "_early",
        "_headers",
        "_inferred_length",
        "_method",
        "_no_body",
        "_plain_body",
        "_progress",
        "_propagate",
        "_remaining",
        "_round",
        "_start_error",
        "_status",
        "_strict_headers",
        "_wsgi_start",
        "halt",
    )

    def __init__(self, method: str, strict_headers: bool, propagate: bool = True) -> None:
        self._method = method
        self._propagate = propagate
        self._strict_headers = strict_headers
        self._status: int | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._cl: int | None = None
        self._remaining: int | None = None
        self._progress = IDLE  # changed only through _w2a_states' table
        self._inferred_length = False
        self._no_body = False
        self._plain_body = False  # the body is a list or tuple: iterating it runs no app code
        self._round: RoundTrip | None = None  # a live in-process round trip (_round_trip)
        self._wsgi_start: tuple[str, list[tuple[str, str]]] | None = None
        # A live round trip serving the very request its WSGI caller made (set by
        # HTTPCycle): what that caller judges itself natively is deferred to it
        # (_round_trip: a malformed start, a str chunk, a chunk before the start).
        self._defer = False
        self._start_error: BaseException | None = None  # the start's check, deferred
        self._early: list[tuple[bytes, tuple[Any, BaseException]]] | None = None
        self.halt = False

    # Implemented by HTTPCycle: how messages reach send(), and the wait for them.
    def _post_send(self, messages: list[Message]) -> None:
        raise NotImplementedError

    def _wait_acks(self, keep: int = 0) -> None:
        raise NotImplementedError

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
                    break
                if self.halt:
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

    def _no_body_status(self) -> bool:
        return self._status in NO_BODY_STATUSES

    def _set_length(self, length: int) -> None:
        self._headers.append((b"content-length", str(length).encode()))
        self._cl = self._remaining = length
        self._inferred_length = True

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
            code, asgi_headers, length = self._check_start(status, headers)
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

    def _check_start(
        self, status: object, headers: object
    ) -> tuple[int, list[tuple[bytes, bytes]], str | None]:
        """``start_response``'s checks: the status code, the ASGI headers and the
        Content-Length value (added last); TypeError or ValueError in the app."""
        code = parse_wsgi_status(status)
        # PEP 3333 asks for a list of tuples, but gunicorn, waitress, uWSGI, mod_wsgi
        # and the peer adapters take any sequence of (name, value) pairs, and apps
        # rely on that (lists as pairs, a tuple of headers): only the name and value
        # themselves are checked (issue 13, point 4).
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
            if (
                type(value) is str
                and value.isdigit()
                and value.isascii()
                and type(name) is str
                and name in length_names
            ):
                pass  # a length in plain ASCII digits under a name checked before
            else:
                name, value = check_wsgi_header(name, value)
                lower = name.lower()
                if lower == "content-length":
                    remember_wsgi_length_name(name)
                    if parse_content_length(value) is None:
                        raise ValueError(f"start_response(): invalid Content-Length {value!r}")
                    value = value.strip(" \t")
                elif is_hop_by_hop(lower.encode("latin-1")):
                    if self._strict_headers:
                        raise ValueError(
                            f"start_response(): hop-by-hop header {name!r} belongs to the"
                            " server (PEP 3333 §Other HTTP Features)"
                        )
                    logger.warning("bridgeway: dropped hop-by-hop response header %r", name)
                    continue
                else:
                    # A field value has no leading or trailing whitespace (RFC 9110
                    # §5.5); Django's Set-Cookie values start with a space, which h11
                    # refuses.
                    pair = (lower.encode("latin-1"), value.strip(" \t").encode("latin-1"))
                    remember_wsgi_pair(header, pair)
                    asgi_headers.append(pair)
                    continue
            if length is not None:
                if value != length:  # the same field value (RFC 9110 §8.6), not "05" and "5"
                    raise ValueError("start_response(): conflicting Content-Length headers")
                continue  # an identical duplicate is dropped (HTTP-10)
            length = value  # appended once, after the other headers
        return code, asgi_headers, length

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
                "bridgeway: the WSGI app wrote past its Content-Length (%d); the excess"
                " was dropped (PEP 3333 §Handling the Content-Length Header)",
                self._cl,
            )
            return
        if self.halt:
            raise ClientDisconnected("the client disconnected; write() cannot deliver")
        if data:
            self._emit(data)
            self._wait_acks()

    def _start_messages(self) -> list[Message]:
        """The start message (in a list: a round trip may add what goes around it)."""
        message: Message = {
            "type": "http.response.start",
            "status": self._status,
            "headers": self._headers,
        }
        if self._wsgi_start is not None and self._round is not None:
            # An ASGIToWSGI of this process serves this response to a WSGI server: it
            # gives that server the app's own status line and headers if this message
            # reaches it unchanged (ASGI has no reason phrase and lower-cases names).
            self._round.sent(message, *self._wsgi_start, self._start_error)
        return [message]

    def _emit(self, chunk: bytes, odd: tuple[Any, BaseException] | None = None) -> bool:
        """Post ``chunk``; True if that completed the response with nothing more to
        pull (DONE, CUT), as the iteration's stop signal (cheaper than re-reading the
        state per chunk). ``odd``: ``chunk`` stands in for what the app gave, and the
        error that is outside a verbatim round trip (``_round_trip``)."""
        progress = self._progress
        messages: list[Message] = []
        if progress is not STREAMING:  # per chunk, only this identity check
            if self._defer and (progress is IDLE or self._early is not None):
                return self._early_chunk(chunk, odd)
            # The headers go out with these bytes; raises before start_response().
            progress = self._progress = NEXT[progress][CHUNK] or illegal(progress, CHUNK)
            messages = self._start_messages()
        if self._no_body:
            if self._status in NO_BODY_STATUSES:
                logger.warning(
                    "bridgeway: dropped body bytes of a %d response (RFC 9110)", self._status
                )
            # HEAD: the headers are out; the body is never sent (HTTP-03).
            messages.append({"type": "http.response.body", "body": b"", "more_body": False})
            self._progress = NEXT[progress][END] or illegal(progress, END)
            self._post_send(messages)
            return True
        remaining = self._remaining
        if remaining is not None and len(chunk) >= remaining:
            if len(chunk) > remaining:
                self._log_excess()
                chunk = chunk[:remaining]
                event = EXCESS
            else:
                # Met exactly: the iterable is pulled once more (FULL). A length we
                # inferred from a one-item list has nothing more to pull (DONE).
                event = END if self._inferred_length else EXACT
            self._remaining = 0
            # Reaching the app's own length ends the response; later write()s are
            # excess and dropped. (A length we inferred from a one-item list cannot be
            # exceeded: the list is all there is.)
            self._progress = NEXT[progress][event] or illegal(progress, event)
            message: Message = {"type": "http.response.body", "body": chunk, "more_body": False}
            if odd is not None and event is not EXCESS:
                self._round.deferred(message, *odd)  # type: ignore[union-attr]
            messages.append(message)
            self._wait_acks()
            self._post_send(messages)
            return event is not EXACT
        if remaining is not None:
            self._remaining = remaining - len(chunk)
        message = {"type": "http.response.body", "body": chunk, "more_body": True}
        if odd is not None:
            self._round.deferred(message, *odd)  # type: ignore[union-attr]
        messages.append(message)
        # Backpressure with a window of two: this chunk may be posted while the one
        # before is still being sent, never further ahead (W2A-RESP-10). The window
        # lets the loop take two chunks per wake-up when the app is fast.
        self._wait_acks(1)
        self._post_send(messages)
        return False

    def _early_chunk(self, chunk: bytes, odd: tuple[Any, BaseException] | None) -> bool:
        """A live round trip of the same request (``_defer``): a chunk before
        ``start_response`` is held, not refused, and goes out first once the app
        started its response, each as a stand-in for what the app yielded (its WSGI
        caller, werkzeug's run_wsgi_app, takes such chunks natively). The caller gets
        the app's status and headers before them: ASGI has no body before its start."""
        if self._progress is IDLE:
            if odd is None:
                try:
                    illegal(IDLE, CHUNK)
                except ProtocolError as exc:
                    odd = (chunk, exc)
            if self._early is None:
                self._early = []
            self._early.append((chunk, odd))
            return False
        return self._flush_early() or self._emit(chunk, odd)

    def _flush_early(self) -> bool:
        """Post the chunks held before ``start_response``; True if that completed the
        response (as ``_emit``)."""
        early, self._early = self._early, None
        return any(self._emit(held, odd) for held, odd in early or ())  # stops at True

    def _log_excess(self) -> None:
        logger.error(
            "bridgeway: the WSGI app sent more bytes than its Content-Length (%d);"
            " the excess was cut (PEP 3333 §Handling the Content-Length Header)",
            self._cl,
        )

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
            logger.debug("bridgeway: WSGI app stopped after the client left: %r", exc)
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
                "bridgeway: the WSGI app raised before sending headers; answered 500",
                exc_info=exc,
            )
            self._progress = advance(self._progress, ERROR_PAGE)
            self._post_send(plain_response(500, _ERROR_BODY))
            return None
        logger.error(
            "bridgeway: the WSGI app raised after the response headers were sent;"
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
        logger.error("bridgeway: close() of the WSGI response iterable raised", exc_info=exc)
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
