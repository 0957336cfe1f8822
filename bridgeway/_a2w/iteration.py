"""The WSGI iterable of one ASGIToWSGI response once it started: its ``__next__`` and
its ``close()``.

Each ``__next__`` releases the app's pending ``send()`` and runs the loop until the
next chunk (``_a2w.task``'s ``_next_step``): the app cannot run ahead of the server
(backpressure). A chunk already in hand is returned without running the loop; that
is the per-chunk hot path, and the turns off it (the end, an error, a pathsend file
after an early start) are calls of their own.

A ``close()`` before the end is a disconnect: the pending ``send()`` raises
``ClientDisconnected`` (an ``OSError``, spec 2.4), ``receive()`` answers
``http.disconnect``, and the task gets a grace period before it is cancelled, off the
worker thread (``_release``). However the response ends (iterated to its end, closed,
or collected), the loop goes back to the pool once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import NoReturn

from ..errors import ClientDisconnected, ProtocolError
from .channel import NO_BODY_STATUS
from .task import Task

logger = logging.getLogger("bridgeway")


class Iteration(Task):
    __slots__ = ()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.file is not None:
            # http.response.pathsend after the start went out early (a direct round
            # trip, _carry): the file is the rest of the body, read here.
            data = self._file_chunk()
            if data:
                return data
        chunk = self.chunk
        if chunk is not None:
            self.chunk = None
            if chunk:
                return chunk
        if self.final or self.exhausted:
            self._stop()
        self.ploop.run(self._next_step, nudged=True)
        if self.error is not None:
            self._raise_mid_response()
        chunk = self.chunk
        if chunk is None:
            self._raise_returned()
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

    def _file_chunk(self) -> bytes:
        """The next bytes of the pathsend file, or b"" once it is closed (the end)."""
        file = self.file
        no_body = self.head or self.status in NO_BODY_STATUS
        data: bytes = b"" if no_body else file.read(self.adapter.chunk_size)
        if not data:
            self.file = None
            file.close()
        return data

    def _stop(self) -> NoReturn:
        """The body is all out: the end, or the app's late exception (A2W-SEND-05)."""
        self.exhausted = True
        if self.final and self._settle():
            error, self.error = self.error, None
            assert error is not None
            self.close()  # a caller that sees the exception may never call close()
            raise error  # after the complete body: the server logs it (A2W-SEND-05)
        self._release_when_complete()
        raise StopIteration

    def _raise_mid_response(self) -> NoReturn:
        self.exhausted = True
        # Taken, so that close() below does not log what is raised here (one
        # traceback per failure, A2W-SEND-05).
        error, self.error = self.error, None
        assert error is not None
        if not (isinstance(error, ClientDisconnected) or self.adapter.propagate_exceptions):
            logger.error(
                "ASGIToWSGI: the ASGI app raised mid-response; the response is aborted",
                exc_info=error,
            )
        self.close()  # the task is over; a caller that sees the error may not close()
        raise error

    def _raise_returned(self) -> NoReturn:
        self.exhausted = True
        self.close()  # as above: the loop goes back even if the caller never closes
        raise ProtocolError(
            "the ASGI app returned before its final http.response.body; the response is"
            " aborted (ASGI-www §Response Body)"
        )

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
            logger.error("ASGIToWSGI: the ASGI app raised after its response", exc_info=error)
        self._release()
        late, self.late = self.late, None
        if late is not None:
            raise late  # after an empty complete response (see _a2w.first_response)

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
