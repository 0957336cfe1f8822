"""WSGIToASGI's side of the in-process round trip: the apps of an ASGIToWSGI further in,
run as tasks of the WSGIToASGI request (``_a2w.nested`` is the other side).

In a round trip (``WSGIToASGI(ASGIToWSGI(app))`` in one process, as a test client or a
server calls it) the ASGI app would natively run on the server's loop, in the server's
call: objects the caller made on that loop (anyio events, capacity limiters, cancel
scopes) work in it, and the call returns only when the app returned, work after its
final body included, raising what the app raised then. So the app runs on the server's
loop, as a task of the request's own task group, while the WSGI app's thread waits for
each step (asgiref's ``AsyncToSync`` does the same when called from a ``SyncToAsync``
thread). Everything here runs on the loop, in the request's task.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from anyio.abc import TaskGroup

if TYPE_CHECKING:
    from .._upstream import Guest, Host

logger = logging.getLogger("bridgeway")


def spawn(cycle: Host, request: Guest) -> None:
    """Start ``request``'s app task (its coroutine is ``request.pending``) in the
    request's task group; until that group is open, ``run()`` opens it first."""
    nested: list[Any] | None = cycle._nested
    if nested is None:
        nested = cycle._nested = []
    nested.append(request)
    if cycle._group is not None:
        _start(cycle._group, request)


def start_nested(cycle: Host, group: TaskGroup) -> None:
    for request in cycle._nested or ():
        _start(group, request)


def _start(group: TaskGroup, request: Guest) -> None:
    coro, request.pending = request.pending, None
    if coro is not None:
        # A task of its own context: a copy of the WSGI thread's (A2W-LIFE-09).
        request.context.run(group.start_soon, lambda: coro)


def abandon_pending(cycle: Host) -> None:
    """The request was cancelled before its task group opened: apps not yet started
    never will be; their WSGI side is told the request is over."""
    for request in cycle._nested or ():
        if request.pending is not None:
            request.abandon()


def end_nested(cycle: Host) -> None:
    """The WSGI app has returned and its iterable was closed: an app further in that
    has not finished its response is told its client is gone (``http.disconnect``,
    ``send()`` raising), as when its WSGI server closes the response early; even when
    WSGI middleware in between dropped the iterable without closing it."""
    for request in cycle._nested or ():
        request.wsgi_gone()


def raised_while_cancelled(cycle: Host) -> BaseException | None:
    """The request was cancelled; an app further in raised an exception of its own
    meanwhile (a ``finally`` that fails while the cancellation unwinds it): natively
    that exception, not the cancellation, leaves the app's ASGI call."""
    for request in cycle._nested or ():
        raised: BaseException | None = request.raised
        if raised is not None:
            return raised
    return cycle._late[0] if cycle._late else None


def pick_error(
    error: BaseException | None, late: list[BaseException], adapter: Any
) -> BaseException | None:
    """What the ASGI call raises: its own error first, else the first exception an app
    further in raised after its response; none is lost (the others are logged), and
    with ``propagate_exceptions=False`` they are logged, never raised."""
    for exc in late:
        if error is None and adapter.propagate_exceptions:
            error = exc
        else:
            logger.error("ASGIToWSGI: the ASGI app raised after its response", exc_info=exc)
    return error
