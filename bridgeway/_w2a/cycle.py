"""One WSGI request served under an ASGI server: the responder behind WSGIToASGI.

Theory of operation
-------------------
Two parties cooperate per request:

* the **request task** (on the event loop: asyncio or trio; ``HTTPCycle.run``, this
  module) owns ``receive`` and ``send``. It builds the environ (``_w2a.environ``),
  submits the WSGI app to a pool thread (``_w2a.workers``), then *serves the thread*:
  it takes what the thread posted to a ``Mailbox`` (``_w2a.threads``: body chunks to
  send, requests for body bytes) and does the awaiting on its behalf (``_pump``);
* the **worker thread** (``_w2a.app_thread``) calls the app, iterates its response
  (``_w2a.response``, ``_w2a.emit``) and closes it, always in that same thread.

One request is one ``HTTPCycle`` object, its layers each a module: ``Emitter`` (the
response's state and chunks), ``WSGIResponse`` (what the app calls), ``AppThread`` (the
thread's posts and close), ``TripResponse`` (the in-process round trip, ``_w2a.trip``),
``Receiver`` (the request body and disconnect, ``_w2a.receiver``) and ``HTTPCycle``
(the request task). ``__init__`` here sets every layer's state: one call per request.

A response that streams is watched for a disconnect (W2A-RESP-14): the request task
starts the receiver once a send() with more_body succeeded. ``send()`` raising
``OSError`` is a disconnect (ASGI-www 2.4); any other error of the server's ``send()``
stops the app the same way and leaves the ASGI call after the thread closed the
iterable. Cancellation of the request task stops the thread at its next chunk boundary
and waits (shielded, up to ``cancel_timeout``) for it to close the iterable
(``_stop_thread``).

The in-process round trip (``_w2a.trip``, ``_w2a.nested``, ``_a2w.nested``): a bridgeway
ASGIToWSGI called by the WSGI app posts its steps here too, and its app runs as a task
of this request's task group (opened, as for the receiver, only when first wanted); the
request task returns only once those tasks are done, and raises what they raised after
their response.
"""

from __future__ import annotations

import logging
import queue
from typing import TYPE_CHECKING, Any

import anyio

from .._context import crossing_context, round_trip
from .._protocol import plain_response
from .._upstream import UPSTREAM_KEY, Upstream
from ..errors import BadRequest
from .app_thread import DISCONNECT, POST_DONE, POST_NESTED, POST_RECV, POST_SEND
from .environ import build_environ
from .nested import abandon_pending, end_nested, pick_error, raised_while_cancelled, start_nested
from .receiver import Receiver
from .threads import Mailbox, current_handle
from .wsgi_input import WSGIInput

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._types import Message, Receive, Scope, Send
    from .adapter import Adapter

logger = logging.getLogger("bridgeway")


class HTTPCycle(Receiver):
    """One request: the request task's side (all on the loop), over its lower layers."""

    __slots__ = ("_scope", "_send", "_send_error")

    def __init__(self, adapter: Adapter, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(scope["method"], adapter.strict_headers, adapter.propagate_exceptions)
        self._adapter = adapter
        self._scope = scope
        self._receive = receive
        self._send = send
        self._send_error: Exception | None = None  # the server's send() refused a message
        # The worker thread's (_w2a.app_thread)
        self._unacked = 0
        self._held = None
        self._delivered = 0
        self._consumed = 0
        self.paused = False
        self._replies = queue.SimpleQueue()
        self._input_replies = queue.SimpleQueue()
        self._started = False
        self._preserved = None
        self.carried = None
        # The receiver's (_w2a.receiver)
        self._body_done = False
        self._want_receiver = False
        self._receiving = False
        self._space = None
        self._streaming = False
        self._stream_started = None
        self._over = False
        self.disconnected = False
        # The in-process round trip's (_w2a.trip)
        self._nested = None
        self._group = None
        self._late = None
        self._wsgi_over = None

    # ------------------------------------------------------------------ loop side

    async def run(self) -> None:
        adapter = self._adapter
        try:
            environ = build_environ(
                self._scope,
                multiprocess=adapter.multiprocess,
                keep_underscore_headers=adapter.keep_underscore_headers,
                max_header_repeats=adapter.max_header_repeats,
            )
        except BadRequest as exc:
            lenient = self._environ_for_asgi_inside()
            if lenient is None:
                await self._refuse(exc)
                return
            environ = lenient
        environ["wsgi.input"] = WSGIInput(self._pull)
        environ["wsgi.errors"] = adapter.errors
        environ["wsgi.file_wrapper"] = adapter.file_wrapper
        live = round_trip.get()
        if live is not None:
            self._join_round_trip(environ, live)  # inside an ASGIToWSGI of this process
        trip = Upstream(self._scope, dict(environ), self, adapter.app)
        environ[UPSTREAM_KEY] = trip
        self._trip = trip
        self._environ = environ
        handle = current_handle()
        self._mailbox = Mailbox(handle)
        handle.requests += 1
        try:
            # Requests over the thread limit wait in the pool's FIFO queue, never refused.
            adapter.pool().submit(self._job())
            error = await self._pump()
            if error is None and not self._mailbox.closed:
                # The receiver is wanted, or an ASGIToWSGI further in started its app:
                # both run as tasks of this request, and the call returns only once
                # they are done (an app's work after its final body included).
                error = await self._serve_in_group()
        finally:
            handle.requests -= 1
        if self._late is not None:
            # What an app further in raised after its response: out of this call, as
            # out of the ASGI call of that app natively (after any error of our own).
            error = pick_error(error or self._send_error, self._late, self._adapter)
        if error is not None:
            raise error
        if self._send_error is not None:
            raise self._send_error

    async def _refuse(self, exc: BadRequest) -> None:
        logger.info("WSGIToASGI: bad request refused before the WSGI app ran: %s", exc)
        for message in plain_response(400, f"Bad Request: {exc}".encode()):
            await self._send(message)

    async def _serve_in_group(self) -> BaseException | None:
        receiver = anyio.CancelScope()
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                while True:
                    if self._nested is not None:
                        start_nested(self, group)
                    if self._want_receiver and not self._receiving:
                        self._receiving = True  # from now on only the receiver calls receive()
                        group.start_soon(self._receive_within, receiver)
                    error = await self._pump()
                    if self._mailbox.closed:
                        break
                parked = self._stream_started
                if self._receiving and parked is not None and not self._streaming:
                    # The receiver waits for a stream that will not come: let it
                    # return, not cancel it (a cancelled asyncio task keeps its
                    # CancelledError, whose traceback is a reference cycle).
                    self._over = True
                    parked.set()
                else:
                    receiver.cancel()
                if self._nested is not None:
                    end_nested(self)  # the WSGI side is done: what it left is told so
        except anyio.get_cancelled_exc_class():
            replacement = raised_while_cancelled(self)
            if replacement is None:
                raise
        else:
            return error
        # Outside the handler, so the exception keeps the context it was raised in.
        raise replacement

    def _job(self) -> Callable[[], Callable[[], None] | None]:
        # The request task's context, less the marker of the loop's async library: the
        # worker thread runs no loop (see _context).
        ctx = crossing_context()
        return lambda: ctx.run(self._thread_main)

    async def _pump(self) -> BaseException | None:
        """Serve the thread until it is done (returns its error to raise, or None),
        or until the receiver task is wanted (returns None, ``_want_receiver`` set)."""
        mailbox = self._mailbox
        receiving = self._receiving
        items: Any = ()  # (no allocation on the hot path)
        done = 0  # items of the current batch taken care of
        try:
            while True:
                if self._want_receiver and not receiving:
                    return None
                if self._nested is not None and self._group is None:
                    return None  # an app further in to start: run() opens the group
                items, done = mailbox.ready(), 0
                if not items:
                    await mailbox.wait()
                    continue
                for item in items:
                    done += 1
                    kind = item[0]
                    if kind == POST_SEND:
                        await self._do_send(item[1], item[2])
                    elif kind == POST_RECV:
                        self._do_recv()
                    elif kind == POST_NESTED:
                        item[1]()
                    else:
                        mailbox.close()
                        if self._wsgi_over is not None:
                            self._wsgi_over.set()  # (send_nested)
                        error: BaseException | None = item[1]
                        return error
        except anyio.get_cancelled_exc_class():
            # Cancelled inside a send(): the rest of the batch (perhaps the thread's
            # "done" post already, or steps of an app further in, which must run or the
            # WSGI thread waits for ever) is dealt with as _stop_thread deals with
            # later posts.
            await self._stop_thread(items[done:])
            raise

    async def _do_send(self, messages: list[Message], ack: bool) -> None:
        if not self.disconnected:
            try:
                for message in messages:
                    await self._send(message)
            except OSError:
                # ASGI-www 2.4: send() may raise OSError once the client has gone.
                self._on_disconnect()
            except Exception as exc:
                # The server refused the message. Stop the app as for a disconnect, so
                # its iterable is still closed in its thread, then re-raise (run()).
                self._send_error = exc
                self._on_disconnect()
            else:
                if messages[-1].get("more_body") and self._adapter.watch_disconnect:
                    # A streaming response: listen for the client leaving (W2A-RESP-14).
                    self._want_receiver = True
                    if not self._streaming:
                        self._streaming = True
                        if self._stream_started is not None:
                            self._stream_started.set()
        if ack:
            self._replies.put(not self.disconnected)

    async def _stop_thread(self, taken: list[tuple[Any, ...]] | None = None) -> None:
        """The request task was cancelled: stop the thread at its next chunk boundary,
        wait (shielded, bounded) for it to close the iterable, then let the
        cancellation go on. ``taken``: posts already taken from the mailbox, unserved."""
        self._halt_now()
        if not self._started:
            # Still queued for a thread: nothing to wait for. The thread that picks the
            # job up sees ``halt`` and never starts the app (``_thread_main`` sets
            # ``_started`` before it reads ``halt``, so one of the two sees the other).
            # Waiting here would hold the cancellation up until some other request
            # freed a thread, up to ``cancel_timeout``.
            self._mailbox.close()
            return
        self._replies.put(False)
        self._input_replies.put(DISCONNECT)
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._adapter.cancel_timeout):
                items = taken or await self._mailbox.take()
                while True:
                    for item in items:
                        if item[0] == POST_SEND and item[2]:
                            self._replies.put(False)
                        elif item[0] == POST_RECV:
                            self._input_replies.put(DISCONNECT)
                        elif item[0] == POST_NESTED:
                            item[1]()
                            if self._group is None:
                                abandon_pending(self)  # never to start: told so
                        elif item[0] == POST_DONE:
                            self._mailbox.close()
                            return
                    items = await self._mailbox.take()
            self._mailbox.close()
            # Whatever the abandoned thread waits for next, it must not wait for ever.
            self._replies.put(False)
            self._input_replies.put(DISCONNECT)
            logger.warning(
                "WSGIToASGI: the WSGI app did not return within %.1fs of the request being"
                " cancelled; its thread is left to finish on its own",
                self._adapter.cancel_timeout,
            )
