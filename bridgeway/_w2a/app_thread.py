"""The worker thread's side of one WSGIToASGI request: it runs the WSGI app, streams its
response to the request task on the event loop, and closes the iterable.

Theory of operation
-------------------
``AppThread._thread_main`` runs in a pool thread (``_w2a.workers``): it calls the app,
``start_response``, ``write()``, iterates the response (``_w2a.response``) and finally
calls ``close()`` on it, always, in that same thread (PEP 3333 §Specification Details).
What has to reach the loop goes through the request's ``Mailbox`` (``_w2a.threads``) as
posts, served by the request task (``_w2a.cycle``): ``POST_SEND`` (messages for send(),
acknowledged on ``_replies`` once sent), ``POST_RECV`` (``wsgi.input`` wants body bytes,
answered on ``_input_replies``), ``POST_NESTED`` (a step of an ASGIToWSGI further in) and
``POST_DONE`` (the thread is done; its error, if any).

Laziness (PEP 3333 §The start_response() Callable): nothing is sent before the first
non-empty chunk or the end of the iterable; until then an error still becomes a clean
500. The common one-chunk response is posted as start + chunk, and when the iterable
ends before the loop took it, the end is folded into that same post: one wake-up of the
loop per request, and the server sees exactly what a native ASGI app would send. The
final post of a list or tuple body (no ``close()``; no app code runs after its last
chunk) goes out with the thread's "done" post, as the very last thing the thread does:
the woken loop then finds the GIL free instead of waiting for the thread's bookkeeping.

close() (W2A-RESP-13): by default as soon as the iteration is over and its last chunk
was posted, without waiting for that send() (``close_after_send=False``); the request
task still returns only after the thread's "done" post, which follows close().

What the in-process round trip adds here (carried responses, preserve_context) is
``_w2a.trip``'s, reached through the three hooks at the end of the class.
"""

from __future__ import annotations

import queue
from threading import get_ident
from typing import TYPE_CHECKING, Any

from ..errors import ClientDisconnected
from .response import WSGIResponse

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .._carry import Carried
    from .._types import Message
    from .._upstream import Upstream
    from .adapter import Adapter
    from .threads import Mailbox

# What the thread posts to the request task (the first item of each post).
POST_SEND, POST_RECV, POST_DONE, POST_NESTED = 1, 2, 3, 4
DISCONNECT = object()  # wsgi.input's answer once the client is gone
PREFETCH = 4  # request body messages the receiver may hand over ahead of reads


class AppThread(WSGIResponse):
    """What the worker thread does for one request (set up by ``HTTPCycle.__init__``)."""

    __slots__ = (
        "_adapter",
        "_consumed",
        "_delivered",
        "_environ",
        "_held",
        "_input_replies",
        "_mailbox",
        "_preserved",
        "_replies",
        "_started",
        "_trip",
        "_unacked",
        "carried",
        "paused",
    )

    _adapter: Adapter
    _environ: dict[str, Any]
    _trip: Upstream  # taken (set to None) by the thread: see _thread_main
    _mailbox: Mailbox
    _replies: queue.SimpleQueue[bool]  # send() acknowledgements, one per acked post
    _input_replies: queue.SimpleQueue[Any]  # body chunks for wsgi.input, or DISCONNECT
    _unacked: int  # posted sends not yet acknowledged
    _held: tuple[Any, ...] | None  # the final post, sent with "done"
    _started: bool  # the thread picked the job up
    _delivered: int  # body messages handed to wsgi.input (written by the loop)
    _consumed: int  # body messages taken by wsgi.input (written by the thread)
    paused: bool  # the receiver waits for room (PREFETCH)
    _preserved: list[Any] | None  # context objects to hand over (_end)
    # Set by a bridgeway ASGIToWSGI further in (``_carry.carry_response``) when it
    # carries what WSGI cannot (trailers, debug messages, an early start): on the
    # cycle, not on the ``Upstream`` (taken off the cycle, see _thread_main); it
    # refers to neither, so it makes no reference cycle.
    carried: Carried | None

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
            self._held = (POST_SEND, messages, False)
            return
        if preserving:
            # A response that streams reaches the caller while this thread still runs
            # the app's code, which may use the context objects it meant to hand over:
            # withheld.
            self._preserved = None
        if self._mailbox.post((POST_SEND, messages, True)):
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
                live.parked = True  # (see _a2w.iteration.Iteration._await_inner_close)
                acked = self._replies.get()
                live.parked = False
            if not acked:
                self.halt = True

    def _pull(self) -> tuple[bytes, bool]:
        """wsgi.input asks for the next body chunk (worker thread, or any thread)."""
        if self.halt:
            raise ClientDisconnected("the client disconnected before the request body ended")
        replies = self._input_replies
        if replies.empty() and not self._mailbox.post((POST_RECV,)):
            raise ClientDisconnected("the request is over; its body can no longer be read")
        reply = replies.get()
        if reply is DISCONNECT:
            raise ClientDisconnected("the client disconnected before the request body ended")
        self._consumed += 1
        if self.paused and self._delivered - self._consumed <= PREFETCH // 2:
            self._mailbox.post((POST_RECV,))  # room again: wake the receiver
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
            return lambda: self._post((POST_DONE, None))
        trip.thread = get_ident()  # an ASGIToWSGI called from here sees the round trip
        try:
            iterable = self._adapter.app(self._environ, self._start_response)
            carried = self.carried
            if carried is None or self._carried_start(carried):
                self._iterate(iterable)
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
        if carried is not None:
            self._carried_end(carried)
        del iterable
        if self._plain_body or self._preserved is not None:
            # The final message is held for the "done" post: post both, and only then
            # drop the environ (whose contents' finalizers are the app's code).
            return lambda: self._end(error)
        self._environ = None  # type: ignore[assignment]  # drop the app's references
        return lambda: self._post((POST_DONE, error))

    def _end(self, error: BaseException | None) -> None:
        preserved = self._preserved
        if preserved and not self.halt:
            self._hand_over_preserved(preserved)
        held, self._held = self._held, None
        if held is None:
            self._post((POST_DONE, error))
        else:
            self._mailbox.post_many([held, (POST_DONE, error)])
        self._environ = None  # type: ignore[assignment]

    def _fold_end_into_last_post(self) -> bool:
        return self._mailbox.amend_last(_fold_end)

    # The round trip's hooks (``_w2a.trip``), each called only when it is live.
    def _carried_start(self, carried: Carried) -> bool:
        """Before the iteration; False if there is nothing to iterate."""
        raise NotImplementedError

    def _carried_end(self, carried: Carried) -> None:
        """After close(): what goes after the final body."""
        raise NotImplementedError

    def _hand_over_preserved(self, preserved: list[Any]) -> None:
        """Before the "done" post: the context objects the app handed over."""
        raise NotImplementedError


def _fold_end(item: tuple[Any, ...]) -> bool:
    """Make an untaken body post the final one (more_body=False)."""
    if item[0] != POST_SEND:
        return False
    item[1][-1]["more_body"] = False
    return True
