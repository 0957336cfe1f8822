"""What the in-process round trip adds to a WSGIToASGI request: its hooks on the
response, and the request as the ``Host`` an ASGIToWSGI further in runs in.

In a round trip (``WSGIToASGI(ASGIToWSGI(app))`` in one process, directly or behind WSGI
middleware, ``_upstream``) a bridgeway ASGIToWSGI called by the WSGI app carries across
what WSGI cannot say:

* **live** (``_round_trip``: served inside an ASGIToWSGI request of this process): the
  app sees that request's environ (``_w2a.inherit``); for the very request the WSGI
  caller made, that caller judges what the app answers (the verbatim start and chunks,
  ``_defer`` in ``_w2a.emit``), and werkzeug's preserve_context objects are handed to
  the caller once the app's thread is done with them (``_hand_over_preserved``);
* **carried** (``_carry.Carried``): trailers, debug messages and an early start of the
  ASGI app further in go out around this response as the app sent them;
* **bare** (``_carry.Carried.bare``): that app sends to the server itself
  (``send_nested``), and its steps run on this request's loop, as tasks of this
  request (``post_nested``, ``spawn_nested``: ``_w2a.nested``); the request task returns
  only once those tasks are done, and raises what they raised after their response.

A request with an invalid Content-Length whose WSGI app is a bridgeway ASGIToWSGI is the
server's to judge (``_environ_for_asgi_inside``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from .._round_trip import PRESERVE_CONTEXT
from ..errors import BadRequest, ClientDisconnected
from .app_thread import POST_NESTED, POST_SEND, AppThread
from .emit import Emitter
from .environ import build_environ
from .inherit import inherit_upstream, take_request_target, take_server_keys
from .nested import spawn
from .states import END, FULL, HEADERS, STARTED, STREAMING, advance

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from .._carry import Carried
    from .._round_trip import RoundTrip
    from .._types import Message, Scope, Send
    from .._upstream import Guest

logger = logging.getLogger("bridgeway")


class TripResponse(AppThread):
    """A request's round-trip hooks (``AppThread``'s) and its ``_upstream.Host`` face."""

    __slots__ = ("_group", "_hand_over", "_late", "_nested", "_wsgi_over")

    _scope: Scope
    _send: Send
    disconnected: bool
    _hand_over: Callable[[Any], object]  # the server's preserve_context callback
    # The requests of an ASGIToWSGI further in, run as tasks of this request (None
    # until the first), the task group that holds them, and what they raised after
    # their response (see _w2a.nested).
    _nested: list[Any] | None
    _group: TaskGroup | None
    _late: list[BaseException] | None
    _wsgi_over: anyio.Event | None  # set once the WSGI side is done (send_nested)

    # ----------------------------------------------------------- the live round trip

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

    def _join_round_trip(self, environ: dict[str, Any], live: RoundTrip) -> None:
        """Served inside an ASGIToWSGI request of this process: what its WSGI server and
        middleware added reaches this app too (``_w2a.inherit.inherit_upstream``), the
        request target as the server wrote it when no ASGI middleware changed it, and
        this app's response goes back as it writes it (``_round_trip``)."""
        upstream = live.environ
        inherit_upstream(environ, upstream, errors=self._adapter.errors_from_server)
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

    def _hand_over_preserved(self, preserved: list[Any]) -> None:
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
                logger.exception("WSGIToASGI: the server's preserve_context callback raised")

    # ------------------------------------------------------- a carried response

    def _emit(self, chunk: bytes, odd: tuple[Any, BaseException] | None = None) -> bool:
        carried = self.carried
        if carried is not None and carried.last and self._remaining is None:
            # A bare round trip's final body (_a2w.nested): one final message, as the
            # ASGI app sent it (the exact-length path of _emit does that).
            self._remaining, self._inferred_length = len(chunk), True
        return Emitter._emit(self, chunk, odd)  # (per chunk: no super object)

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

    def _carried_start(self, carried: Carried) -> bool:
        if carried.early_start and self._progress is STARTED:
            # A direct round trip whose ASGI app started its response without a
            # body yet: its start goes out now, as its server would send it (_carry).
            self._progress = advance(STARTED, HEADERS)
            self._post_send(self._start_messages())
        # A silent one: the ASGI app further in sent nothing; nor does this request.
        return not carried.silent

    def _carried_end(self, carried: Carried) -> None:
        if (
            carried.trailers
            and not carried.bare  # (the app sends them itself: send_nested)
            and self._progress >= STREAMING
        ):
            # After close(): the app further in runs on to its trailers (a task of
            # this request on the server's loop, _a2w.nested; or on a loop of
            # ASGIToWSGI's pool behind WSGI middleware, finished off its thread).
            self._carry_trailers(carried)

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
        if complete and not self._mailbox.post((POST_SEND, carried.after_body, False)):
            self.halt = True

    # ------------------------------------------- the Host of an app further in

    def post_nested(self, callback: Callable[[], object]) -> bool:
        """Run ``callback`` on the loop, in this request's task (an ASGIToWSGI further
        in, called from the WSGI app's thread). False when the request is over."""
        return self._mailbox.post((POST_NESTED, callback))

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
