"""What one ASGIToWSGI request returns to the WSGI server: the first response.

``Request.respond`` runs the loop until the app's first body event (or its end), so
an error before any byte still becomes a 500 (ASGI-www §Response Start: "need not
flush ... until the first Response Body"). ``_first_response`` then calls
``start_response`` and returns one of:

* a one-element list: the whole response was one final message (nothing more to run,
  and the length is known); ``_ClosableBody`` when it is a WSGI app's own response;
* the request itself as the iterator (``_a2w.iteration``), for a streamed body;
* ``_EarlyStarted``: the start went out before any body (a direct round trip);
* the server's ``wsgi.file_wrapper`` for ``http.response.pathsend`` (sendfile under
  gunicorn);
* a plain 500 when the app failed before its body (or raised, with
  ``propagate_exceptions``, as a native WSGI app's would).
"""

from __future__ import annotations

import contextlib
import logging
import os
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._headers import status_line
from .._protocol import FileWrapper, plain_wsgi_response
from ..errors import ClientDisconnected, ProtocolError
from .channel import NO_BODY_STATUS
from .iteration import Iteration

if TYPE_CHECKING:
    from .._carry import Carried

logger = logging.getLogger("bridgeway")


class _ClosableBody(list[bytes]):
    """A complete body, with the ``close()`` PEP 3333 lets a server call."""

    def close(self) -> None:
        pass


class _EarlyStarted:
    """The iterable of a response whose start went out early (a direct round trip,
    ``_carry``). Every other step hands the WSGI side the response's state while the
    app is parked (on the chunk it sent) or done; the early start did not: the app was
    awaiting something else, and runs on while the start goes out (on the server's
    loop in a round trip run there, on the loop's own thread in ``thread`` mode), so
    its next body could land between two reads of the WSGI thread. The first step
    waits on the loop for the app's next event (or sees it already there), as the
    other steps do; then the request's own iteration goes on. Only for an early start:
    every other response is iterated as it always was."""

    __slots__ = ("request", "synced")

    def __init__(self, request: FirstResponse) -> None:
        self.request = request
        self.synced = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        request = self.request
        if not self.synced:
            self.synced = True
            request.ploop.run(request._early_step, nudged=True)
        return request.__next__()

    def close(self) -> None:
        self.request.close()


class FirstResponse(Iteration):
    __slots__ = ()

    def _first_response(self) -> Any:
        carried = self.carried
        if self.chunk is None and self.status and carried is not None and carried.direct:
            return self._early_start(carried)
        error = self.error
        if error is not None and not self.final:  # raised after the final body: below
            return self._failed(error)
        if self.chunk is None:  # the task ended with no body event
            if self.status:
                why = "returned after http.response.start without sending a body"
            else:
                why = "returned without sending http.response.start"
            return self._error_response(
                ProtocolError(f"the ASGI app {why} (ASGI-www §Response Start)"), why
            )
        if self.file is not None:
            return self._file_response(self.file)
        headers = self.headers
        # Trailers carried past WSGI (_carry) need a body of unknown length (chunked, as
        # the app's own server sends it): no Content-Length, and the iterator, not a
        # list (whose length WSGIToASGI would announce).
        trailers = carried is not None and carried.trailers
        if (
            self.final
            and not trailers
            and self.length is None
            and not self.head
            and self.status not in NO_BODY_STATUS
        ):
            # The whole body is known: give the server its length rather than making it
            # chunk or close the connection (HTTP-08).
            headers.append(("Content-Length", str(len(self.chunk))))
        self._start_response(headers)
        self.yielded = True
        if self.final:
            return self._complete_response(trailers)
        return self

    def _early_start(self, carried: Carried) -> _EarlyStarted:
        # A direct round trip (_carry): the app sent http.response.start and no body
        # yet. Its server would send the start now; WSGIToASGI does (early_start).
        # Whatever the app did next (an error, returning without a body) comes from
        # the iteration, as after the start natively.
        self._start_response(self.headers)
        self.yielded = True
        carried.early_start = True
        return _EarlyStarted(self)

    def _failed(self, error: BaseException) -> list[bytes]:
        """The app raised before its response body began."""
        if self.adapter.propagate_exceptions and not isinstance(error, ClientDisconnected):
            # As a native WSGI app's would (PEP 3333 §Error Handling): raised from
            # the app call before start_response, so the server answers its own
            # generic 500 and logs the traceback once; test clients re-raise it.
            self._release()
            self.exhausted = True
            raise error
        return self._error_response(error, "raised before the response body began")

    def _complete_response(self, trailers: bool) -> Any:
        """The app's final body is in hand and the start went out."""
        # wait_background=True: the work after the final body runs here, before the
        # settle below looks for an error, so an exception there (a background task's)
        # reaches the test client after the body, as an in-process ASGI test client
        # raises it (A2W-SEND-05); else it was only logged.
        self._wait_background()
        if self._settle():
            if not self.chunk:
                # A complete response with no body bytes (a 204, a HEAD, an empty 200):
                # the server sends its headers only once the iterable is exhausted (PEP
                # 3333 §The start_response() Callable), so raised from the iteration the
                # app's late exception would turn it into the server's 500. It is raised
                # from close() instead, after the server sent the response, as a native
                # server logs it after sending (A2W-SEND-05).
                self.late, self.error = self.error, None
                self.exhausted = True
            return self  # yields the body, then raises the app's late exception
        if trailers:
            return self
        chunk = self.chunk
        self.exhausted = True
        self._release()
        if self.verbatim is not None:
            # A WSGI app's own response (a WSGIToASGI of this process, unchanged on the
            # way): an iterable the server can close(), as that app's was (werkzeug's,
            # Flask's, Django's responses have close()).
            return _ClosableBody([chunk] if chunk else [])
        return [chunk] if chunk else []

    def _start_response(self, headers: list[tuple[str, str]]) -> None:
        verbatim = self.verbatim
        try:
            if verbatim is None:
                self.start_response(status_line(self.status), headers)
            else:
                # The start message is the one a WSGIToASGI inside the app sent for its
                # WSGI app, unchanged: the server gets that app's own status line (its
                # reason phrase) and headers (their names' case), as with no bridge.
                self.start_response(*verbatim)
        except BaseException:
            # The server refused the response (gunicorn's InvalidHeader, wsgiref's
            # asserts, a client already gone): the app is told the client is gone and
            # the loop still goes back to the pool.
            self.closed = True
            self._release()
            raise

    def _error_response(self, error: BaseException, why: str) -> list[bytes]:
        logger.error("ASGIToWSGI: the ASGI app %s; answered 500", why, exc_info=error)
        errors = self.environ.get("wsgi.errors")
        if errors is not None:
            # A broken error stream must not mask the 500.
            with contextlib.suppress(Exception):
                errors.write(
                    "".join(traceback.format_exception(type(error), error, error.__traceback__))
                )
        self._release()
        self.exhausted = True
        return plain_wsgi_response(
            self.start_response,
            "500 Internal Server Error",
            b"Internal Server Error",
            (type(error), error, error.__traceback__),
        )

    def _file_response(self, file: Any) -> Any:
        self.file = None  # handed to the server's file wrapper (or ours) below
        headers = self.headers
        if self.length is None and not self.head and self.status not in NO_BODY_STATUS:
            headers.append(("Content-Length", str(os.fstat(file.fileno()).st_size)))
        try:
            self._start_response(headers)
        except BaseException:
            file.close()
            raise
        self.yielded = self.exhausted = True
        self._release()
        if self.head or self.status in NO_BODY_STATUS:
            file.close()
            return []
        wrapper = self.environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            return wrapper(file, self.adapter.chunk_size)
        return FileWrapper(file, self.adapter.chunk_size)  # the server has none
