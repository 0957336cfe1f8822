"""One ASGI request served under a WSGI server: the responder behind ASGIToWSGI.

Theory of operation
-------------------
Everything happens in the WSGI server's thread, on the event loop checked out for this
request (see ``_a2w.loops``). ``respond()`` starts the app's task and runs the loop until
the app's first body event (or its end), so an error before any byte still becomes a
500 (ASGI-www §Response Start: "need not flush ... until the first Response Body").
It then calls ``start_response`` and returns either a one-element list (the whole
response was one final message: nothing more to run, and the length is known) or this
object as the iterator. Each ``__next__`` releases the app's pending ``send()`` and runs
the loop until the next chunk: the app cannot run ahead of the server (backpressure).

The app's ``send()`` and ``receive()`` live in ``_a2w.channel.AppChannel``. A
``close()`` before the end is a disconnect: the pending ``send()`` raises
``ClientDisconnected`` (an ``OSError``, spec 2.4), ``receive()`` answers
``http.disconnect``, and the task gets a grace period before it is cancelled, off the
worker thread. A response sent with ``http.response.pathsend`` is returned as the
server's ``wsgi.file_wrapper`` (sendfile under gunicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._carry import carry_body, carry_request, carry_response
from .._context import crossing_context, round_trip
from .._headers import status_line
from .._lifespan_outcome import LifespanOutcome
from .._protocol import FileWrapper, plain_wsgi_response
from .._round_trip import RoundTrip
from .._scope import build_scope, content_length
from .._types import Environ, StartResponse
from ..errors import BadRequest, ClientDisconnected, ProtocolError
from .channel import NO_BODY_STATUS, AppChannel

if TYPE_CHECKING:
    from .._upstream import Upstream
    from .adapter import Adapter
    from .loops import PooledLoop

logger = logging.getLogger("bridgeway")


def _caused_by_disconnect(exc: BaseException) -> bool:
    """``exc`` is, or was raised while handling, an ``OSError`` (a few links deep)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, OSError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def scope_of(request: Request, environ: Environ) -> dict[str, Any]:
    """The request's scope; sets how much body it has (raises ``BadRequest``)."""
    scope = build_scope(environ)
    request.body_left = content_length(environ)
    if request.body_left is None and not environ.get("wsgi.input_terminated"):
        request.body_left = 0  # no length and no EOF marker: no body (A2W-RECV-03)
    return scope


def bad_request(start_response: StartResponse, exc: BadRequest) -> list[bytes]:
    logger.info("bridgeway: bad request refused before the ASGI app ran: %s", exc)
    return plain_wsgi_response(start_response, "400 Bad Request", f"Bad Request: {exc}".encode())


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

    def __init__(self, request: Request) -> None:
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


class Request(AppChannel):
    __slots__ = (
        "context",
        "exhausted",
        "late",
        "released",
        "scope",
        "settler",
        "start_response",
        "task",
        "task_done",
        "yielded",
    )

    def __init__(self, adapter: Adapter, environ: Environ, start_response: StartResponse) -> None:
        super().__init__(adapter, environ)
        # The calling WSGI thread's context, taken at the call: what WSGI middleware set
        # (a tracing span, log bindings) is visible to the app (A2W-LIFE-09), less
        # sniffio's "async library" marker, which would name the wrong loop (_context).
        self.context = crossing_context()
        # A WSGIToASGI inside the app gives its WSGI app this environ's extension keys,
        # and its WSGI app's response reaches the server as that app wrote it.
        trip = self.trip = RoundTrip(environ)
        self.context.run(round_trip.set, trip)
        self.start_response = start_response
        self.yielded = False  # start_response was called and bytes may be out
        self.exhausted = False
        self.task_done = False
        self.released = False  # the WSGI side no longer looks at this request's errors
        self.late: BaseException | None = None  # raised from close() (see _first_response)
        self.ploop: PooledLoop

    # ---------------------------------------------------------- WSGI thread side

    def respond(self, upstream: Upstream | None = None) -> Any:
        """Serve the request on a loop of the pool. ``upstream``: the live round trip
        this request belongs to, when it is not run on its server's loop
        (``_a2w.nested.live_trip``: behind WSGI middleware, with a lifespan of its own)."""
        environ, adapter = self.environ, self.adapter
        try:
            # scope_of(), inline: this is the hot path.
            scope = build_scope(environ)
            self.body_left = content_length(environ)
        except BadRequest as exc:
            return bad_request(self.start_response, exc)
        if self.body_left is None and not environ.get("wsgi.input_terminated"):
            self.body_left = 0  # no length and no EOF marker: no body (A2W-RECV-03)
        ploop = self.ploop = adapter.pool().checkout()
        ploop.serving = f"{scope['method']} {scope['path']}"
        lifespan = ploop.lifespan
        if lifespan is not None:
            if lifespan.status is LifespanOutcome.FAILED:
                self.released = True
                adapter.pool().checkin(ploop)
                return plain_wsgi_response(
                    self.start_response, "500 Internal Server Error", b"Internal Server Error"
                )
            state = lifespan.request_state()
            if state is not None:
                scope["state"] = state
        self.loop = ploop.loop
        extensions: dict[str, Any] = {"http.response.pathsend": {}}
        scope["extensions"] = extensions
        if upstream is not None:
            self.carry_from(upstream, scope, extensions)
        self.scope = scope
        ploop.run(self._start_step, nudged=True)
        return self._first_response()

    def carry_from(self, trip: Upstream, scope: dict[str, Any], extensions: dict[str, Any]) -> None:
        """A WSGIToASGI of this process calls us in this thread (a live round trip):
        what WSGI lost of the request, the server's body messages, and the response
        extensions its server offers (_carry)."""
        environ = self.environ
        carry_request(scope, environ, trip)
        if carry_body(environ, trip):
            self.body_left, self.by_message = None, True
        self.carried = carry_response(extensions, trip, self.start_response)

    def _first_response(self) -> Any:
        carried = self.carried
        if self.chunk is None and self.status and carried is not None and carried.direct:
            # A direct round trip (_carry): the app sent http.response.start and no body
            # yet. Its server would send the start now; WSGIToASGI does (early_start).
            # Whatever the app did next (an error, returning without a body) comes from
            # the iteration, as after the start natively.
            self._start_response(self.headers)
            self.yielded = True
            carried.early_start = True
            return _EarlyStarted(self)
        error = self.error
        if error is not None and not self.final:  # raised after the final body: below
            if self.adapter.propagate_exceptions and not isinstance(error, ClientDisconnected):
                # As a native WSGI app's would (PEP 3333 §Error Handling): raised from
                # the app call before start_response, so the server answers its own
                # generic 500 and logs the traceback once; test clients re-raise it.
                self._release()
                self.exhausted = True
                raise error
            return self._error_response(error, "raised before the response body began")
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
            # wait_background=True: the work after the final body runs here, before the
            # settle below looks for an error, so an exception there (a background
            # task's) reaches the test client after the body, as an in-process ASGI
            # test client raises it (A2W-SEND-05); else it was only logged.
            self._wait_background()
            if self._settle():
                if not self.chunk:
                    # A complete response with no body bytes (a 204, a HEAD, an empty
                    # 200): the server sends its headers only once the iterable is
                    # exhausted (PEP 3333 §The start_response() Callable), so raised from
                    # the iteration the app's late exception would turn it into the
                    # server's 500. It is raised from close() instead, after the server
                    # sent the response, as a native server logs it after sending
                    # (A2W-SEND-05).
                    self.late, self.error = self.error, None
                    self.exhausted = True
                return self  # yields the body, then raises the app's late exception
            if trailers:
                return self
            chunk = self.chunk
            self.exhausted = True
            self._release()
            if self.verbatim is not None:
                # A WSGI app's own response (a WSGIToASGI of this process, unchanged on
                # the way): an iterable the server can close(), as that app's was
                # (werkzeug's, Flask's, Django's responses have close()).
                return _ClosableBody([chunk] if chunk else [])
            return [chunk] if chunk else []
        return self

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        file = self.file
        if file is not None:
            # http.response.pathsend after the start went out early (a direct round
            # trip, _carry): the file is the rest of the body, read here.
            no_body = self.head or self.status in NO_BODY_STATUS
            data: bytes = b"" if no_body else file.read(self.adapter.chunk_size)
            if data:
                return data
            self.file = None
            file.close()
        chunk = self.chunk
        if chunk is not None:
            self.chunk = None
            if chunk:
                return chunk
        if self.final or self.exhausted:
            self.exhausted = True
            if self.final and self._settle():
                error, self.error = self.error, None
                assert error is not None
                self.close()  # a caller that sees the exception may never call close()
                raise error  # after the complete body: the server logs it (A2W-SEND-05)
            self._release_when_complete()
            raise StopIteration
        self.ploop.run(self._next_step, nudged=True)
        if self.error is not None:
            self.exhausted = True
            # Taken, so that close() below does not log what is raised here (one
            # traceback per failure, A2W-SEND-05).
            error, self.error = self.error, None
            if not (isinstance(error, ClientDisconnected) or self.adapter.propagate_exceptions):
                logger.error(
                    "bridgeway: the ASGI app raised mid-response; the response is aborted",
                    exc_info=error,
                )
            self.close()  # the task is over; a caller that sees the error may not close()
            raise error
        chunk = self.chunk
        if chunk is None:
            self.exhausted = True
            self.close()  # as above: the loop goes back even if the caller never closes
            raise ProtocolError(
                "the ASGI app returned before its final http.response.body; the response is"
                " aborted (ASGI-www §Response Body)"
            )
        self.chunk = None
        if self.final:
            self.exhausted = True
            self._wait_background()
        if chunk:
            return chunk
        if self.file is not None:
            return self.__next__()  # pathsend after an early start: read above
        self._release_when_complete()
        raise StopIteration

    def _release_when_complete(self) -> None:
        """The whole response was iterated: hand the loop back now rather than at
        close(). A server should still call close() (PEP 3333), and it stays safe to,
        but werkzeug's dev server skips it when the client reset the connection (its
        drain read raises first), which would keep the loop checked out for ever."""
        if self.final:
            self._release()

    def __del__(self) -> None:
        # The last resort for a server that never calls close() on an unfinished
        # response (werkzeug's, as above, when the client resets mid-stream): collected,
        # the request does what close() does, so the app learns its client is gone and
        # the loop goes back. Never reached when close() or the full iteration ran.
        if not self.released and hasattr(self, "ploop"):
            self.trip = None  # collected in any thread: never run the loop here
            with contextlib.suppress(Exception):
                self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        file, self.file = self.file, None
        if file is not None:
            file.close()  # a pathsend file this iterator was still reading
        self._await_inner_close()
        error = self.error
        if self.final and error is not None:
            # Raised after the final body but the server stopped iterating before it
            # could see it: never silence (A2W-SEND-05).
            self.error = None
            logger.error("bridgeway: the ASGI app raised after its response", exc_info=error)
        self._release()
        late, self.late = self.late, None
        if late is not None:
            raise late  # after an empty complete response (see _first_response)

    def _await_inner_close(self) -> None:
        """The server closed the response early, and the response is a WSGI app's own,
        served by a WSGIToASGI of this process for this request (a live round trip).
        With no bridge, the server's ``close()`` returns once that app's ``close()``
        has run (its ``finally`` blocks, a generator's context exits): Flask's test
        client closes a streamed response and then pops the request context that the
        app's generator pushed. So when the app's thread is parked between chunks (no
        app code running, it closes the iterable as soon as it learns the client left),
        the loop is run here until the app's task ended, bounded by
        ``disconnect_grace``. An app thread busy inside ``next()`` is not waited for
        (it may be an event stream waiting for its next event): the task finishes off
        this thread as before (``_release``)."""
        trip = self.trip
        if (
            self.final
            or self.released
            or self.task_done
            or self.verbatim is None
            or trip is None
            or not trip.parked
        ):
            return
        self.ploop.call(self._signal_gone)
        task, grace, loop = self.task, self.adapter.disconnect_grace, self.loop
        self.ploop.run(
            lambda: asyncio.ensure_future(asyncio.wait({task}, timeout=grace), loop=loop)
        )

    def _settle(self) -> bool:
        """After the final body, let the app run on for a few loop steps (what it does
        right after its last send(), as Starlette's ServerErrorMiddleware re-raising
        after its 500) so an exception there reaches the WSGI server. True when one
        did; work that outlasts the steps (background tasks) finishes off the thread."""
        if not self.adapter.propagate_exceptions or self.closed:
            return False
        if not self.task_done:
            self.ploop.run(self._settle_step, nudged=True)
        return self.error is not None

    def _release(self) -> None:
        """Hand the loop back (once); if the task still runs, finish it off this thread."""
        if self.released:
            return
        self.released = True
        if self.reader is not None:
            self.reader.stop(self.adapter.disconnect_grace)
        if self.final:
            self._wait_background()
        if self.task_done:
            self.adapter.pool().checkin(self.ploop)
            return
        if self.final:
            timeout = self.adapter.background_timeout
        else:
            # The server closed the response early: the client is gone (A2W-RECV-07).
            timeout = self.adapter.disconnect_grace
            self.ploop.call(self._signal_gone)
        self.ploop.finish_in_background(self.task, timeout, gone=not self.final)

    def _wait_background(self) -> None:
        """``wait_background=True``: the work after the final body (``yield``
        dependencies' teardown, background tasks) runs to its end in this thread before
        the response ends, so a test client sees its side effects."""
        if self.adapter.wait_background and not self.task_done:
            self.ploop.finish_here(self.task, self.adapter.background_timeout)

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
        logger.error("bridgeway: the ASGI app %s; answered 500", why, exc_info=error)
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

    # --------------------------------------------------------------- loop side

    def _start_step(self) -> asyncio.Future[None]:
        self.ready = self.loop.create_future()
        self.task = self.ploop.spawn(self._main(), self.context)
        return self.ready

    def _next_step(self) -> asyncio.Future[None]:
        ready = self.ready = self.loop.create_future()
        pulled, self.pulled = self.pulled, None
        if pulled is not None and not pulled.done():
            pulled.set_result(None)
        elif self.task_done:
            ready.set_result(None)
        return ready

    def _early_step(self) -> asyncio.Future[None]:
        """After an early start (``_EarlyStarted``): done at once when the app has sent
        its next event already (a chunk it now waits on, its final body or file, an
        error, its end), else when it does (``send()``, ``_main`` wake this future)."""
        ready = self.ready = self.loop.create_future()
        if self.chunk is not None or self.final or self.error is not None or self.task_done:
            ready.set_result(None)
        return ready

    def _settle_step(self) -> asyncio.Future[None]:
        ready = self.ready = self.loop.create_future()

        async def steps() -> None:
            # Always wake at the end: in thread mode the task may have ended (and woken
            # the previous ready future) between the WSGI thread's check of task_done
            # and this step, and nothing else would complete this one.
            for _ in range(4):
                if self.task_done:
                    break
                await asyncio.sleep(0)
            self._wake()

        self.settler = self.loop.create_task(steps())
        return ready

    async def _main(self) -> None:
        try:
            await self.adapter.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError as exc:
            if self.final or self.closed or self.released:
                logger.debug("bridgeway: the ASGI app was cancelled after the client left")
            else:
                # bridgeway cancels the task only once the response is over or the client
                # has gone: before that, CancelledError is the app's own exception (one it
                # raised, or an inner cancellation it let escape) and surfaces as any
                # other would (A2W-SEND-05), not as "returned without a response".
                self.error = exc
        except BaseException as exc:
            if self.closed and _caused_by_disconnect(exc):
                # Our own ClientDisconnected, raised after the client left, or the app's
                # translation of it (Starlette raises ClientDisconnect from it): not an
                # application error (A2W-SEND-08).
                logger.debug("bridgeway: the ASGI app ended after the client left: %r", exc)
            elif self.final and not self.released and self.adapter.propagate_exceptions:
                self.error = exc  # raised from the iterator once the body is out
            elif self.final or self.closed:
                logger.error("bridgeway: the ASGI app raised after its response", exc_info=exc)
            else:
                self.error = exc
        finally:
            self.task_done = True
            if self.carried is not None:
                self.carried.finish()  # no trailers will follow
            self._wake()

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
