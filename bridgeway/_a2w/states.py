"""The ASGI response cycle as explicit states (ASGI-www §Response Start/Body).

ASGIToWSGI checks every message the application sends against one transition table,
the only place that decides what may come next; a message with no entry for the
current state is a protocol violation by the app and raises ``ProtocolError`` inside
``send()``, naming the rule. Once in ERROR, the cycle stays there (as h11's
``_state.py`` does).

Two events are not messages but what the adapter found in one: EXCESS (a body message
went past the app's ``Content-Length``: the excess is cut, and every later body
message is dropped, A2W-SEND-10) and SHORT (the final body message left the length
unmet: the response fails). They are taken right after the message's own event, which
checked the order first.
"""

from __future__ import annotations

from enum import Enum

from ..errors import ProtocolError


class State(Enum):
    IDLE = "idle"  # nothing sent yet
    STARTED = "started"  # http.response.start received, no body yet
    STREAMING = "streaming"  # a body message with more_body=True received
    DONE = "done"  # the final body message received
    CUT = "cut"  # complete at the app's Content-Length; later body messages dropped
    SHORT = "short"  # the final body message fell short of the Content-Length
    ERROR = "error"

    # Members are singletons compared by identity: hash them by identity too, in C, not
    # through Enum's Python-level __hash__ (two lookups of the table per response).
    __hash__ = object.__hash__


IDLE, STARTED, STREAMING, DONE, CUT, SHORT, ERROR = State
# The states in which the app's final body is in hand (AppChannel.final).
FINAL = frozenset({DONE, CUT})

START = "http.response.start"
BODY = "http.response.body"
BODY_END = "http.response.body (final)"
TRAILERS = "http.response.trailers"
PATHSEND = "http.response.pathsend"
EXCESS = "more body than its Content-Length"
SHORT_BODY = "less body than its Content-Length"

EVENTS = (START, BODY, BODY_END, TRAILERS, PATHSEND, EXCESS, SHORT_BODY)

_TRANSITIONS: dict[tuple[State, str], State] = {
    (IDLE, START): STARTED,
    (STARTED, BODY): STREAMING,
    (STARTED, BODY_END): DONE,
    (STARTED, PATHSEND): DONE,  # the file is the whole body (EXT-06)
    (STREAMING, BODY): STREAMING,
    (STREAMING, BODY_END): DONE,
    (STREAMING, EXCESS): CUT,
    (DONE, EXCESS): CUT,
    (DONE, SHORT_BODY): SHORT,
    # Body messages after a cut are the rest of the excess: dropped (already logged).
    (CUT, BODY): CUT,
    (CUT, BODY_END): CUT,
    # Trailers announced with trailers=True: accepted and dropped, WSGI cannot send them
    # (EXT-08).
    (DONE, TRAILERS): DONE,
    (CUT, TRAILERS): CUT,
    (SHORT, TRAILERS): SHORT,
}

_RULE = "(ASGI-www §Response Start / §Response Body)"
_AFTER_BODY = "the ASGI app sent http.response.body after the response was complete " + _RULE
_AFTER_START = "the ASGI app sent http.response.start after the response was complete " + _RULE
_PATHSEND = (
    "http.response.pathsend must come right after http.response.start, once,"
    " instead of any http.response.body (ASGI extensions §Path Send)"
)

_WHY = {
    (IDLE, BODY): "the ASGI app sent http.response.body before http.response.start " + _RULE,
    (IDLE, BODY_END): "the ASGI app sent http.response.body before http.response.start " + _RULE,
    (STARTED, START): "the ASGI app sent a second http.response.start " + _RULE,
    (STREAMING, START): "the ASGI app sent http.response.start after the body began " + _RULE,
    (DONE, START): _AFTER_START,
    (CUT, START): _AFTER_START,
    (SHORT, START): _AFTER_START,
    (DONE, BODY): _AFTER_BODY,
    (DONE, BODY_END): _AFTER_BODY,
    (SHORT, BODY): _AFTER_BODY,
    (SHORT, BODY_END): _AFTER_BODY,
    **{(state, PATHSEND): _PATHSEND for state in State if state is not STARTED},
}


def why(state: State, event: str) -> str:
    """The rule that (state, event) breaks: the text of its ``ProtocolError``."""
    return _WHY.get((state, event), f"the ASGI app sent {event} in state {state.value} {_RULE}")


def next_state(state: State, event: str) -> State:
    """Where ``event`` leads from ``state``; ``ProtocolError`` naming the rule when the
    table has no such transition. Pure: the caller keeps the state."""
    new = _TRANSITIONS.get((state, event))
    if new is None:
        raise ProtocolError(why(state, event))
    return new


class ResponseCycle:
    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = IDLE

    def advance(self, event: str) -> State:
        new = _TRANSITIONS.get((self.state, event))
        if new is None:
            old, self.state = self.state, ERROR
            raise ProtocolError(why(old, event))
        self.state = new
        return new

    def check(self, event: str) -> None:
        """``ProtocolError`` if ``event`` may not come next; the state is kept. For a
        message validated before it is taken (pathsend opens its file in between)."""
        next_state(self.state, event)
