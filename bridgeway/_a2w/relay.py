"""The step plumbing of ASGIToWSGI's in-process round trip (``_a2w.nested``): how the
WSGI thread runs a step of the request on the server's loop and waits for it.

``Request`` (``_a2w.task``, ``_a2w.iteration``) drives its app through a pooled loop:
``run(step)`` runs ``step`` on the loop and blocks until the future it returned is
done. In a round trip the loop is the server's (asyncio or trio), run by the
WSGIToASGI request this one is called from, so ``Relay`` stands in for the pooled
loop: it posts each step through that request's mailbox (``Host.post_nested``) and
sleeps on a queue until the step's ``Future`` resolves, as asgiref's ``AsyncToSync``
does when called from a ``SyncToAsync`` thread. ``Future`` is the part of
``asyncio.Future`` the request uses, on either anyio backend.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from ..errors import ClientDisconnected

if TYPE_CHECKING:
    from .._upstream import Host


class Future:
    """The part of ``asyncio.Future`` ``Request`` uses, on either anyio backend;
    resolved on the loop, awaited by tasks (any number), watched by callbacks."""

    __slots__ = ("_callbacks", "_done", "_event", "_exception")

    def __init__(self) -> None:
        self._done = False
        self._exception: BaseException | None = None
        self._event: anyio.Event | None = None
        self._callbacks: list[Callable[[Future], object]] = []

    def done(self) -> bool:
        return self._done

    def set_result(self, _result: None) -> None:
        self._finish(None)

    def set_exception(self, exception: BaseException) -> None:
        self._finish(exception)

    def _finish(self, exception: BaseException | None) -> None:
        if self._done:
            raise asyncio.InvalidStateError("the future is already done")
        self._done = True
        self._exception = exception
        if self._event is not None:
            self._event.set()
        for callback in self._callbacks:
            callback(self)

    def add_done_callback(self, callback: Callable[[Future], object]) -> None:
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def __await__(self) -> Generator[Any, None, None]:
        if not self._done:
            if self._event is None:
                self._event = anyio.Event()
            yield from self._event.wait().__await__()
        if self._exception is not None:
            raise self._exception


class Relayed(Protocol):
    """What ``Relay`` sees of its request (``_a2w.nested.NestedRequest``)."""

    host: Host  # the WSGIToASGI request this one runs in
    forwarding: list[Future]  # messages waiting to be passed on (_a2w.forward)
    yielded: bool
    status: int

    def release_forwarding(self, error: BaseException | None = None) -> None: ...
    def _wait_step(self) -> Any: ...


class Relay:
    """Stands in for ``Request``'s pooled loop (and its loop's ``create_future``): runs
    steps on the server's loop and blocks the WSGI thread until each one is done."""

    __slots__ = ("request", "woken")

    def __init__(self, request: Relayed) -> None:
        self.request = request
        self.woken: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()

    def create_future(self) -> Future:
        return Future()

    def run(self, step: Callable[[], Future], *, nudged: bool = False) -> None:
        self._run(step)
        request = self.request
        # Messages the app passes on to the server in a bare round trip (_a2w.forward):
        # what the WSGI side sent for the app's earlier messages is posted by now (after
        # its start, once that went out), so they go after it: released by a step of the
        # request's mailbox, then the next event of the app is waited for.
        while request.forwarding and (request.yielded or not request.status):
            if not request.host.post_nested(request.release_forwarding):
                raise ClientDisconnected("the WSGIToASGI request this app runs under is over")
            self._run(request._wait_step)

    def _run(self, step: Callable[[], Future]) -> None:
        woken = self.woken
        ran = False

        def on_loop() -> None:
            # Once only: a cancelled request runs what it had taken again (_w2a.cycle).
            nonlocal ran
            if ran:
                return
            ran = True
            try:
                step().add_done_callback(lambda _: woken.put(None))
            except BaseException as exc:  # a bug of ours: never leave the thread waiting
                woken.put(exc)

        if not self.request.host.post_nested(on_loop):
            raise ClientDisconnected("the WSGIToASGI request this app runs under is over")
        error = woken.get()
        if error is not None:
            raise error

    def nudge(self, ready: object) -> None:
        pass  # the step's future wakes the thread itself (run above)

    def call(self, fn: Callable[[], object]) -> None:
        self.request.host.post_nested(fn)  # refused once that request is over: see end_nested

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """On the loop (the app's ``send()``): run ``fn`` once the running task's
        current step is over, as ``asyncio``'s ``call_soon`` on a loop of the pool. A
        task of the request's group (open: the app runs in it) starts only then, on
        either backend."""
        group = self.request.host._group
        assert group is not None  # the app's own task runs in it

        async def soon() -> None:
            fn(*args)

        group.start_soon(soon)
