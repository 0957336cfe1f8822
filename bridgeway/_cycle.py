"""The ASGI response cycle as explicit states (ASGI-www §Response Start/Body).

ASGIToWSGI checks every message the application sends against one transition table;
a message with no entry for the current state is a protocol violation by the app and
raises ``ProtocolError`` inside ``send()``, naming the rule. Once in ERROR, the cycle
stays there (as h11's ``_state.py`` does).
"""

from __future__ import annotations

from enum import Enum

from .errors import ProtocolError


class State(Enum):
    IDLE = "idle"  # nothing sent yet
    STARTED = "started"  # http.response.start received, no body yet
    STREAMING = "streaming"  # a body message with more_body=True received
    DONE = "done"  # the final body message received
    ERROR = "error"

    # Members are singletons compared by identity: hash them by identity too, in C, not
    # through Enum's Python-level __hash__ (two lookups of the table per response).
    __hash__ = object.__hash__


START = "http.response.start"
BODY = "http.response.body"
BODY_END = "http.response.body (final)"
TRAILERS = "http.response.trailers"

_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.IDLE, START): State.STARTED,
    (State.STARTED, BODY): State.STREAMING,
    (State.STARTED, BODY_END): State.DONE,
    (State.STREAMING, BODY): State.STREAMING,
    (State.STREAMING, BODY_END): State.DONE,
    # Trailers announced with trailers=True: accepted and dropped, WSGI cannot send them
    # (EXT-08).
    (State.DONE, TRAILERS): State.DONE,
}

_WHY = {
    (State.IDLE, BODY): "http.response.body before http.response.start",
    (State.IDLE, BODY_END): "http.response.body before http.response.start",
    (State.STARTED, START): "a second http.response.start",
    (State.STREAMING, START): "http.response.start after the body began",
    (State.DONE, START): "http.response.start after the response was complete",
    (State.DONE, BODY): "http.response.body after the response was complete",
    (State.DONE, BODY_END): "http.response.body after the response was complete",
}


class ResponseCycle:
    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = State.IDLE

    def advance(self, event: str) -> State:
        new = _TRANSITIONS.get((self.state, event))
        if new is None:
            old, self.state = self.state, State.ERROR
            why = _WHY.get((old, event), f"{event} in state {old.value}")
            raise ProtocolError(
                f"the ASGI app sent {why} (ASGI-www §Response Start / §Response Body)"
            )
        self.state = new
        return new
