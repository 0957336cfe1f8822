"""One WSGI request served under an ASGI server: the responder behind WSGIToASGI.

Theory of operation
-------------------
Two parties cooperate per request:

* the **request task** (on the event loop: asyncio or trio) owns ``receive`` and
  ``send``. It submits the WSGI app to a pool thread, then *serves the thread*: it takes
  what the thread posted to a ``Mailbox`` (body chunks to send, requests for body bytes)
  and does the awaiting on its behalf;
* the **worker thread** calls the app, ``start_response``, ``write()``, iterates the
  response and finally calls ``close()`` on it, always, in that same thread (PEP 3333
  §Specification Details).

The response side (``start_response``, ``write()``, iteration, errors) lives in
``_w2a.response.WSGIResponse``; this class adds the plumbing between the two parties.

Backpressure: the thread may post a chunk while the previous one is still being sent,
never further ahead (a window of two); ``write()`` waits until its bytes were sent.
So at most a few chunks are in memory (W2A-RESP-10), and a fast app still lets the
loop take two chunks per wake-up.

Laziness (PEP 3333 §The start_response() Callable): nothing is sent before the first
non-empty chunk or the end of the iterable; until then an error still becomes a clean
500. The common one-chunk response is posted as start + chunk, and when the iterable
ends before the loop took it, the end is folded into that same post: one wake-up of the
loop per request, and the server sees exactly what a native ASGI app would send. The
final post of a list or tuple body (no ``close()``; no app code runs after its last
chunk) goes out with the thread's "done" post, as the very last thing the thread does:
the woken loop then finds the GIL free instead of waiting for the thread's bookkeeping.

Request body: at the app's first read of ``wsgi.input`` a receiver task takes over
``receive()`` and hands up to four messages ahead of the reads (W2A-INPUT-06); the
first ``receive()`` therefore happens only when the app reads (HTTP-01).

Disconnect: ``send()`` raising ``OSError``, ``receive()`` returning ``http.disconnect``
(seen by the receiver, which keeps listening while a response streams), or
cancellation of the request task all set ``halt``; the thread stops at the next chunk
boundary and closes the iterable, in its own thread.

close() (W2A-RESP-13): by default as soon as the iteration is over and its last chunk
was posted, without waiting for that send() (``close_after_send=False``); the request
task still returns only after the thread's "done" post, which follows close().

The in-process round trip (``_w2a.nested``, ``_a2w.nested``): a bridgeway ASGIToWSGI
called by the WSGI app posts its steps here too, and its app runs as a task of this
request's task group (opened, as for the receiver, only when first wanted); the request
task returns only once those tasks are done, and raises what they raised after their
response.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterable
from threading import get_ident
from typing import TYPE_CHECKING, Any

import anyio

from .._carry import Carried
from .._context import crossing_context, round_trip
from .._protocol import plain_response
from .._round_trip import PRESERVE_CONTEXT
from .._types import Message, Receive, Scope, Send
from .._upstream import UPSTREAM_KEY, Upstream
from ..errors import BadRequest, ClientDisconnected
from .environ import build_environ, inherit_upstream, take_request_target, take_server_keys
from .nested import (
    abandon_pending,
    end_nested,
    pick_error,
    raised_while_cancelled,
    spawn,
    start_nested,
)
from .response import WSGIResponse
from .states import END, FULL, HEADERS, STARTED, STREAMING, advance
from .threads import Mailbox, current_handle
from .wsgi_input import WSGIInput

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from .._upstream import Guest
    from .adapter import Adapter

logger = logging.getLogger("bridgeway")


def _server_broke_receive(kind: object, body_done: bool) -> None:
    what = "after the request body ended" if body_done else "while the body was being read"
    logger.error(
        "bridgeway: the ASGI server broke the receive() contract: it returned %r %s;"
        " only http.request (until more_body=False) and http.disconnect are allowed"
        " (ASGI-www §Request, §Disconnect). bridgeway stops listening for a disconnect"
        " on this request.",
        kind,
        what,
    )


_SEND, _RECV, _DONE, _NESTED = 1, 2, 3, 4
_DISCONNECT = object()
_PREFETCH = 4  # request body messages the receiver may hand over ahead of reads


class HTTPCycle(WSGIResponse):
    __slots__ = (
        "_adapter",
        "_body_done",
        "_consumed",
        "_delivered",
        "_environ",
        "_group",
        "_hand_over",
        "_held",
        "_input_replies",
        "_late",
        "_mailbox",
        "_nested",
        "_over",
        "_preserved",
        "_receive",
        "_receiving",
        "_replies",
        "_scope",
        "_send",
        "_send_error",
        "_space",
        "_started",
        "_stream_started",
        "_streaming",
        "_trip",
        "_unacked",
        "_want_receiver",
        "_wsgi_over",
        "carried",
        "disconnected",
        "paused",
    )

    def __init__(self, adapter: Adapter, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(scope["method"], adapter.strict_headers, adapter.propagate_exceptions)
        self._adapter = adapter
        self._scope = scope
        self._receive = receive
        self._send = send
        self._unacked = 0
        self._held: tuple[Any, ...] | None = None  # the final post, sent with "done"
        self._body_done = False
        self._want_receiver = False
        self._receiving = False
        self._delivered = 0  # body messages handed to wsgi.input (written by the loop)
        self._consumed = 0  # body messages taken by wsgi.input (written by the thread)
        self._space: anyio.Event | None = None
        self._streaming = False
        self._send_error: Exception | None = None
        self._stream_started: anyio.Event | None = None
        self._over = False
        self.paused = False
        self._replies: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._input_replies: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._started = False
        self.disconnected = False
        self._preserved: list[Any] | None = None  # context objects to hand over (_end)
        # The in-process round trip (see _w2a.nested): the requests of an ASGIToWSGI
        # further in, run as tasks of this request (None until the first), the task
        # group that holds them, and what they raised after their response.
        self._nested: list[Any] | None = None
        self._group: TaskGroup | None = None
        self._late: list[BaseException] | None = None
        # Set by a bridgeway ASGIToWSGI further in (``_carry.carry_response``) when it
        # carries what WSGI cannot (trailers, debug messages, an early start): on the
        # cycle, not on the ``Upstream`` (taken off the cycle, see _thread_main); it
        # refers to neither, so it makes no reference cycle.
        self.carried: Carried | None = None
        self._wsgi_over: anyio.Event | None = None  # set once the WSGI side is done

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
                logger.info("bridgeway: bad request refused before the WSGI app ran: %s", exc)
                for message in plain_response(400, f"Bad Request: {exc}".encode()):
                    await self._send(message)
                return
            environ = lenient
        environ["wsgi.input"] = WSGIInput(self._pull)
        environ["wsgi.errors"] = adapter.errors
        environ["wsgi.file_wrapper"] = adapter.file_wrapper
        live = round_trip.get()
        if live is not None:
            # Served inside an ASGIToWSGI request of this process: what its WSGI server
            # and middleware added reaches this app too (see _w2a.environ.inherit_upstream),
            # the request target as the server wrote it when no ASGI middleware changed
            # it, and this app's response goes back as it writes it (_round_trip).
            upstream = live.environ
            inherit_upstream(environ, upstream, errors=adapter.errors_from_server)
            self._round = live
            if live.same_request(self._scope):
                # The very request the WSGI caller made: the app sees that caller's
                # environ, and the caller judges what the app answers (_round_trip).
                take_request_target(environ, upstream)
                take_server_keys(environ, upstream)
                self._defer = True
                hand_over = upstream.get(PRESERVE_CONTEXT)
                if callable(hand_over):  # (not for another request the ASGI app makes)
                    self._hand_over = hand_over
                    self._preserved = []
                    environ[PRESERVE_CONTEXT] = self._preserved.append
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

    def _environ_for_asgi_inside(self) -> dict[str, Any] | None:
        """The environ of a request WSGIToASGI would refuse for its Content-Length, when
        its WSGI app is a bridgeway ASGIToWSGI (a direct round trip): the ASGI app behind
        it gets the server's scope and body messages (``_carry``), so judging the request
        is the server's, as natively (a test client passes anything on). The length is
        left out of the environ: the body is read to its end. None otherwise (400)."""
        adapter = self._adapter
        if not adapter.asgi_inside:
            return None
        try:
            return build_environ(
                self._scope,
                multiprocess=adapter.multiprocess,
                keep_underscore_headers=adapter.keep_underscore_headers,
                max_header_repeats=adapter.max_header_repeats,
                check_length=False,
            )
        except BadRequest:
            return None  # (too many repeats of a header: refused as always)

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

    async def _receive_within(self, scope: anyio.CancelScope) -> None:
        with scope:
            await self._receiver()

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
                    if kind == _SEND:
                        await self._do_send(item[1], item[2])
                    elif kind == _RECV:
                        self._do_recv()
                    elif kind == _NESTED:
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

    def _do_recv(self) -> None:
        """wsgi.input needs bytes: start the receiver task, or wake it if it paused."""
        if self.disconnected:
            self._input_replies.put(_DISCONNECT)
        elif not self._receiving:
            self._want_receiver = True
        elif self._space is not None:
            self._space.set()

    async def _receiver(self) -> None:
        """The only caller of receive() once started (at the app's first body read, or
        when the response starts streaming). It hands body messages to wsgi.input
        ahead of its reads, at most _PREFETCH of them (W2A-INPUT-06), so a fast upload
        costs no round trip per chunk; once the body is done it keeps listening for
        http.disconnect (W2A-RESP-14)."""
        replies = self._input_replies
        while True:
            if self._body_done and not self._streaming:
                # Nothing to read; listen for a disconnect only once the response
                # streams (a one-shot response needs no watcher).
                self._stream_started = anyio.Event()
                if not self._streaming:
                    await self._stream_started.wait()
                    if self._over:
                        return  # the request is over (run())
                continue
            if not self._body_done and self._delivered - self._consumed >= _PREFETCH:
                self._space = anyio.Event()
                self.paused = True
                if self._delivered - self._consumed >= _PREFETCH:  # re-check: no lost wake
                    await self._space.wait()
                self.paused = False
                self._space = None
                continue
            message = await self._receive()
            kind = message.get("type")
            if kind == "http.request" and not self._body_done:
                more = message.get("more_body", False)
                if not more:
                    self._body_done = True
                self._delivered += 1
                replies.put((message.get("body", b""), more))
            elif kind == "http.disconnect":
                self._on_disconnect()
                replies.put(_DISCONNECT)
                return
            else:
                # ASGI-www §Request: after more_body=False the only message receive()
                # may return is http.disconnect. A server that answers again at once
                # would turn this loop into a busy spin for the whole response, so
                # stop listening (send() still reports a client that has gone).
                _server_broke_receive(kind, self._body_done)
                if not self._body_done:
                    # The body cannot be completed: wsgi.input raises rather than
                    # hand the app a truncated body that looks whole.
                    self._body_done = True
                    replies.put(_DISCONNECT)
                return

    def _on_disconnect(self) -> None:
        self.disconnected = True
        self._halt_now()

    def _halt_now(self) -> None:
        """Stop the thread at its next chunk boundary, or its wait for carried trailers."""
        self.halt = True
        carried = self.carried
        if carried is not None:
            carried.finish()

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
        self._input_replies.put(_DISCONNECT)
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._adapter.cancel_timeout):
                items = taken or await self._mailbox.take()
                while True:
                    for item in items:
                        if item[0] == _SEND and item[2]:
                            self._replies.put(False)
                        elif item[0] == _RECV:
                            self._input_replies.put(_DISCONNECT)
                        elif item[0] == _NESTED:
                            item[1]()
                            if self._group is None:
                                abandon_pending(self)  # never to start: told so
                        elif item[0] == _DONE:
                            self._mailbox.close()
                            return
                    items = await self._mailbox.take()
            self._mailbox.close()
            # Whatever the abandoned thread waits for next, it must not wait for ever.
            self._replies.put(False)
            self._input_replies.put(_DISCONNECT)
            logger.warning(
                "bridgeway: the WSGI app did not return within %.1fs of the request being"
                " cancelled; its thread is left to finish on its own",
                self._adapter.cancel_timeout,
            )

    # ---------------------------------------------------------------- thread side

    def post_nested(self, callback: Callable[[], object]) -> bool:
        """Run ``callback`` on the loop, in this request's task (an ASGIToWSGI further
        in, called from the WSGI app's thread). False when the request is over."""
        return self._mailbox.post((_NESTED, callback))

    def spawn_nested(self, request: Guest) -> None:
        """Start an ASGIToWSGI further in's app as a task of this request (on the loop,
        in this request's task: ``_w2a.nested.spawn``)."""
        spawn(self, request)

    async def send_nested(self, message: Message, after_response: bool) -> None:
        """An ASGI app further in, on this loop, sends ``message`` to the server itself
        (a bare round trip, ``_carry.Carried.bare``): once this request's WSGI side is
        done (``after_response``: after the app's final body), else at once (its caller
        made sure that what the WSGI side posted before was sent: ``_a2w.nested``).
        Raises what the server's send() raised, as natively."""
        if after_response and not self._mailbox.closed:
            over = self._wsgi_over
            if over is None:
                over = self._wsgi_over = anyio.Event()
            await over.wait()
        if self.disconnected:
            raise ClientDisconnected("the client is gone")
        await self._send(message)

    def _emit(self, chunk: bytes, odd: tuple[Any, BaseException] | None = None) -> bool:
        carried = self.carried
        if carried is not None and carried.last and self._remaining is None:
            # A bare round trip's final body (_a2w.nested): one final message, as the
            # ASGI app sent it (the exact-length path of _emit does that).
            self._remaining, self._inferred_length = len(chunk), True
        return super()._emit(chunk, odd)

    def _post(self, item: tuple[Any, ...]) -> None:
        if not self._mailbox.post(item):
            self.halt = True

    def _post_send(self, messages: list[Message]) -> None:
        """Post messages for send(); the loop acknowledges each post once sent."""
        preserving = self._preserved is not None
        if (self._plain_body or preserving) and not messages[-1].get("more_body"):
            # The final message of a list or tuple body: from here to the "done" post
            # only bridgeway's own bookkeeping runs (no app code: a list has no close()),
            # so it goes with that post, and the loop is woken once for both (the last
            # thing the thread does, so the woken loop does not wait for the GIL).
            # With context objects to hand over (_end), the whole response is held so.
            self._held = (_SEND, messages, False)
            return
        if preserving:
            # A response that streams reaches the caller while this thread still runs
            # the app's code, which may use the context objects it meant to hand over:
            # withheld.
            self._preserved = None
        if self._mailbox.post((_SEND, messages, True)):
            self._unacked += 1
        else:
            self.halt = True

    def _wait_acks(self, keep: int = 0) -> None:
        """Wait until at most ``keep`` posted sends are still unacknowledged."""
        while self._unacked > keep:
            if self.halt:
                # Stopped (disconnect or cancellation): a send interrupted by the
                # cancellation will never be acknowledged, so nothing more is awaited.
                self._unacked = 0
                return
            self._unacked -= 1
            live = self._round
            if live is None:
                acked = self._replies.get()
            else:
                live.parked = True  # (see Request._await_inner_close)
                acked = self._replies.get()
                live.parked = False
            if not acked:
                self.halt = True

    def _pull(self) -> tuple[bytes, bool]:
        """wsgi.input asks for the next body chunk (worker thread, or any thread)."""
        if self.halt:
            raise ClientDisconnected("the client disconnected before the request body ended")
        replies = self._input_replies
        if replies.empty() and not self._mailbox.post((_RECV,)):
            raise ClientDisconnected("the request is over; its body can no longer be read")
        reply = replies.get()
        if reply is _DISCONNECT:
            raise ClientDisconnected("the client disconnected before the request body ended")
        self._consumed += 1
        if self.paused and self._delivered - self._consumed <= _PREFETCH // 2:
            self._mailbox.post((_RECV,))  # room again: wake the receiver
        return reply  # type: ignore[no-any-return]

    def _thread_main(self) -> Callable[[], None]:
        """Run the app, stream its response, close it. Returns the "done" post, which
        the pool runs once this thread is idle again."""
        error: BaseException | None = None
        iterable: Iterable[bytes] | None = None
        self._started = True
        # Taken off the cycle: its environ copy holds wsgi.input, which holds the cycle,
        # and a reference cycle per request would leave every request's objects to the
        # garbage collector instead of freeing them when the request ends.
        trip, self._trip = self._trip, None  # type: ignore[assignment]
        if self.halt:  # cancelled while it waited for a thread: never start the app
            return lambda: self._post((_DONE, None))
        trip.thread = get_ident()  # an ASGIToWSGI called from here sees the round trip
        try:
            iterable = self._adapter.app(self._environ, self._start_response)
            carried = self.carried
            if carried is not None and carried.early_start and self._progress is STARTED:
                # A direct round trip whose ASGI app started its response without a
                # body yet: its start goes out now, as its server would send it (_carry).
                self._progress = advance(STARTED, HEADERS)
                self._post_send(self._start_messages())
            if carried is None or not carried.silent:
                self._iterate(iterable)
            # else: the ASGI app further in sent nothing; nor does this request (_carry)
        except BaseException as exc:
            error = self._fail(exc)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                # close() runs once the last chunk was handed to the loop (W2A-RESP-13):
                # it is already posted, so close() cannot hold the response back. With
                # close_after_send=True it also waits until that send() returned; a body
                # without close() (a plain list) needs no such wait.
                if self._adapter.close_after_send:
                    self._wait_acks()
                try:
                    close()
                except BaseException as exc:
                    error = self._close_failed(exc, error)
            trip.thread = None  # the environ outlives the call: no longer a live trip
        carried = self.carried
        if (
            carried is not None
            and carried.trailers
            and not carried.bare  # (the app sends them itself: send_nested)
            and self._progress >= STREAMING
        ):
            # After close(): the app further in runs on to its trailers (a task of
            # this request on the server's loop, _a2w.nested; or on a loop of
            # ASGIToWSGI's pool behind WSGI middleware, finished off its thread).
            self._carry_trailers(carried)
        del iterable
        if self._plain_body or self._preserved is not None:
            # The final message is held for the "done" post: post both, and only then
            # drop the environ (whose contents' finalizers are the app's code).
            return lambda: self._end(error)
        self._environ = None  # type: ignore[assignment]  # drop the app's references
        return lambda: self._post((_DONE, error))

    def _start_messages(self) -> list[Message]:
        messages = super()._start_messages()
        carried = self.carried
        if carried is not None:
            # A bridgeway ASGIToWSGI inside carried what WSGI cannot (_carry): its app's
            # debug messages go around the start where the app sent them, and the start
            # announces the app's trailers.
            if carried.trailers:
                messages[0]["trailers"] = True
            if carried.before_start or carried.after_start:
                messages = [*carried.before_start, *messages, *carried.after_start]
                carried.before_start, carried.after_start = [], []
        return messages

    def _carry_trailers(self, carried: Carried) -> None:
        """The start announced the app's trailers: once the app sent the last of them or
        ended (its final body is out), send them after the final body message, as the
        app sent them. A client that leaves or a cancellation ends the wait
        (``_on_disconnect``, ``_stop_thread``)."""
        held, self._held = self._held, None
        # The final body of a list is held for the "done" post: out now, as the wait
        # may be long.
        if held is not None and not self._mailbox.post(held):
            self.halt = True
        finished = carried.finished
        assert finished is not None  # made when the trailers were announced
        while not finished.wait(1.0) and not self.halt:
            pass
        if self.halt or not carried.after_body:
            return
        if carried.final and self._progress is STREAMING:
            # The ASGI app's body was complete, then it raised (with trailers sent): as
            # a native server got them, the final body and the trailers go out before
            # the error leaves the ASGI call.
            self._progress = advance(STREAMING, END)
            carried.after_body.insert(0, {"type": "http.response.body"})
        complete = self._progress >= FULL
        if complete and not self._mailbox.post((_SEND, carried.after_body, False)):
            self.halt = True

    def _end(self, error: BaseException | None) -> None:
        preserved = self._preserved
        if preserved and not self.halt:
            # werkzeug's preserve_context (Flask's "with client:"): the app handed over
            # context objects for its caller's thread to enter once the call returns.
            # Handed on only now that the app's thread is done with the request (close()
            # has run), and before the caller gets any of the response, so the caller
            # enters them after the app is done with them, as with no bridge in between
            # (where both happen in one thread). Streamed responses: see _post_send.
            for item in preserved:
                try:
                    self._hand_over(item)
                except Exception:
                    logger.exception("bridgeway: the server's preserve_context callback raised")
        held, self._held = self._held, None
        if held is None:
            self._post((_DONE, error))
        else:
            self._mailbox.post_many([held, (_DONE, error)])
        self._environ = None  # type: ignore[assignment]

    def _fold_end_into_last_post(self) -> bool:
        return self._mailbox.amend_last(_fold_end)


def _fold_end(item: tuple[Any, ...]) -> bool:
    """Make an untaken body post the final one (more_body=False)."""
    if item[0] != _SEND:
        return False
    item[1][-1]["more_body"] = False
    return True
