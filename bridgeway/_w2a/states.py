"""WSGIToASGI's response progress as explicit states (PEP 3333 §The start_response()
Callable, §Handling the Content-Length Header).

``WSGIResponse`` takes every change of its progress from one transition table, the
only place that decides what the WSGI app may do next; an event with no entry for
the current state is the app's protocol violation and raises ``ProtocolError`` in the
app's thread, naming the rule.

Cheap by construction, since the response runs this per chunk: the states and events
are plain small ints (CPython specializes comparisons and tuple indexing of exact
ints, not of ``IntEnum`` members, and small ints are singletons, so ``is`` compares
them); ``Progress`` only names them. The table is read as ``NEXT[state][event]``,
two tuple indexings inline, without a call: a missing entry is None, and ``illegal()``
raises for it (no transition leads to IDLE, 0, so a legal one is never falsy). A
streamed chunk in STREAMING is no change and only compares the state by identity.
States are ordered: a state ``>= FULL`` is complete.

Not states, because they are orthogonal to the progress: ``halt`` (the client left
or the request was cancelled: set from the event loop's side at any point), whether
the response may carry a body (HEAD, 204, 304: fixed by ``start_response``), whether
the Content-Length is the app's or inferred from a one-item list (it picks the event
when the length is met: EXACT, or END as nothing more can come), and whether a body
is a list (fixed by what the app returned).
"""

from __future__ import annotations

from enum import IntEnum
from typing import NoReturn

from ..errors import ProtocolError


class Progress(IntEnum):
    IDLE = 0  # start_response() not called yet
    STARTED = 1  # start_response() called; headers not sent
    STREAMING = 2  # headers sent (with the first body bytes); the body goes on
    # Complete from here on (the final body message is posted):
    FULL = 3  # the app's Content-Length was met exactly: the iterable is pulled once more
    DONE = 4  # ended by the iterable, a body-less response (HEAD, 204, 304), a 500 page
    CUT = 5  # the app's Content-Length was exceeded: the excess is cut, later bytes dropped


IDLE, STARTED, STREAMING, FULL, DONE, CUT = (int(p) for p in Progress)

EVENTS = (
    "start_response()",
    "start_response(exc_info)",
    "body bytes",  # a chunk of the iterable, or write(): the headers go out with the first
    "the end of the body",  # the iterable ended, or a body-less response got its end
    "body bytes meeting the Content-Length exactly",
    "body bytes past the Content-Length",
    "an error page",  # the app raised before sending headers: 500
    "write()",  # only its checks: the bytes it writes are a CHUNK
    # A direct round trip's early start (_carry): the ASGI app further in sent its start
    # and awaits something before its body, so the headers go out alone, as its server
    # would send them.
    "the headers before any body bytes",
)
START, RESTART, CHUNK, END, EXACT, EXCESS, ERROR_PAGE, WRITE, HEADERS = range(len(EVENTS))

TRANSITIONS: dict[tuple[int, int], int] = {
    (IDLE, START): STARTED,
    (IDLE, RESTART): STARTED,
    (STARTED, RESTART): STARTED,  # headers not sent yet: the app may change its mind
    (STARTED, CHUNK): STREAMING,
    (STREAMING, CHUNK): STREAMING,
    (STARTED, HEADERS): STREAMING,
    (STARTED, END): DONE,  # the headers go out with the end
    (STREAMING, END): DONE,
    (STREAMING, EXACT): FULL,
    (STREAMING, EXCESS): CUT,
    (IDLE, ERROR_PAGE): DONE,
    (STARTED, ERROR_PAGE): DONE,
    (STARTED, WRITE): STARTED,
    (STREAMING, WRITE): STREAMING,
    # Past the app's own Content-Length, more bytes are excess: logged and dropped.
    (FULL, WRITE): FULL,
    (CUT, WRITE): CUT,
}

NEXT: tuple[tuple[int | None, ...], ...] = tuple(
    tuple(TRANSITIONS.get((state, event)) for event in range(len(EVENTS))) for state in Progress
)

_PEP = "(PEP 3333 §The start_response() Callable)"
_WRITE = "(PEP 3333 §The write() Callable)"

_WHY: dict[tuple[int, int], str] = {
    **{
        (state, START): f"start_response() was called a second time without exc_info {_PEP}"
        for state in Progress
        if state is not Progress.IDLE
    },
    (IDLE, CHUNK): f"the WSGI app produced body bytes before calling start_response() {_PEP}",
    (IDLE, END): f"the WSGI app returned without calling start_response() {_PEP}",
    (IDLE, WRITE): f"write() was called before start_response() {_WRITE}",
    (DONE, WRITE): f"write() was called after the response was complete {_WRITE}",
}


def why(state: int, event: int) -> str:
    """The rule that (state, event) breaks: the text of its ``ProtocolError``."""
    return _WHY.get(
        (state, event), f"the WSGI app sent {EVENTS[event]} in state {Progress(state).name} {_PEP}"
    )


def illegal(state: int, event: int) -> NoReturn:
    raise ProtocolError(why(state, event))


def advance(state: int, event: int) -> int:
    """Where ``event`` leads from ``state``; ``ProtocolError`` naming the rule when the
    table has no such transition. (The hot path inlines it, see above.)"""
    return NEXT[state][event] or illegal(state, event)
