"""The response state models, table-driven: every (state, event) pair of each table.

Each adapter decides what may happen next from one transition table
(``bridgeway._a2w.states`` for ASGIToWSGI's response cycle, ``bridgeway._w2a.states`` for
WSGIToASGI's response progress). The expected tables below are written out here, not
read from the modules: a legal pair moves to the state given here, every other pair
raises ``ProtocolError`` naming the rule it breaks. The lifespan drivers share one
outcome type; both give the same outcome for the same app.

The public behaviour of these rules (the errors an app sees, where they surface) is
tested in test_a2w_response.py, test_w2a_response.py and test_w2a_errors.py.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import anyio
import pytest

from bridgeway._a2w import states as a2w
from bridgeway._a2w.lifespan import Lifespan
from bridgeway._lifespan_outcome import LifespanOutcome
from bridgeway._mix.fanout import _Mount
from bridgeway._types import Receive, Scope, Send
from bridgeway._w2a import states as w2a
from bridgeway.errors import ProtocolError

# ---------------------------------------------------------------- ASGIToWSGI (a2w)

S = a2w.State
A2W_LEGAL = {
    (S.IDLE, a2w.START): S.STARTED,
    (S.STARTED, a2w.BODY): S.STREAMING,
    (S.STARTED, a2w.BODY_END): S.DONE,
    (S.STARTED, a2w.PATHSEND): S.DONE,
    (S.STREAMING, a2w.BODY): S.STREAMING,
    (S.STREAMING, a2w.BODY_END): S.DONE,
    (S.STREAMING, a2w.EXCESS): S.CUT,
    (S.DONE, a2w.EXCESS): S.CUT,
    (S.DONE, a2w.SHORT_BODY): S.SHORT,
    (S.DONE, a2w.TRAILERS): S.DONE,
    (S.CUT, a2w.BODY): S.CUT,
    (S.CUT, a2w.BODY_END): S.CUT,
    (S.CUT, a2w.TRAILERS): S.CUT,
    (S.SHORT, a2w.TRAILERS): S.SHORT,
}


def a2w_why(state: a2w.State, event: str) -> str:
    """The words an illegal pair's error must contain (the rule it breaks)."""
    complete = state in (S.DONE, S.CUT, S.SHORT)
    if event == a2w.PATHSEND:
        return "pathsend must come right after http.response.start, once"
    if event == a2w.START and state is S.STARTED:
        return "a second http.response.start"
    if event == a2w.START and state is S.STREAMING:
        return "http.response.start after the body began"
    if event == a2w.START and complete:
        return "http.response.start after the response was complete"
    if event in (a2w.BODY, a2w.BODY_END) and state is S.IDLE:
        return "http.response.body before http.response.start"
    if event in (a2w.BODY, a2w.BODY_END) and complete:
        return "http.response.body after the response was complete"
    return f"{event} in state {state.value}"


A2W_PAIRS = list(itertools.product(S, a2w.EVENTS))


@pytest.mark.parametrize(("state", "event"), A2W_PAIRS, ids=lambda x: getattr(x, "name", x))
def test_a2w_cycle_every_pair(state: a2w.State, event: str) -> None:
    cycle = a2w.ResponseCycle()
    cycle.state = state
    expected = A2W_LEGAL.get((state, event))
    if expected is not None:
        cycle.check(event)  # legal: no error, and no move
        assert cycle.state is state
        assert cycle.advance(event) is expected
        assert cycle.state is expected
        return
    with pytest.raises(ProtocolError) as info:
        cycle.check(event)
    assert cycle.state is state  # check() keeps the state (pathsend opens its file first)
    with pytest.raises(ProtocolError) as again:
        cycle.advance(event)
    assert cycle.state is S.ERROR  # and stays there, as h11 does
    text = str(info.value)
    assert text == str(again.value)
    assert "§" in text  # the rule, with its spec section
    assert "ASGI" in text
    assert a2w_why(state, event) in text


def test_a2w_final_states() -> None:
    # AppChannel.final caches "the final body is in hand": DONE or CUT, never SHORT.
    assert {S.DONE, S.CUT} == a2w.FINAL


# ---------------------------------------------------------------- WSGIToASGI (w2a)

P = w2a.Progress
W2A_LEGAL = {
    (P.IDLE, w2a.START): P.STARTED,
    (P.IDLE, w2a.RESTART): P.STARTED,
    (P.STARTED, w2a.RESTART): P.STARTED,
    (P.STARTED, w2a.CHUNK): P.STREAMING,
    (P.STREAMING, w2a.CHUNK): P.STREAMING,
    (P.STARTED, w2a.END): P.DONE,
    (P.STREAMING, w2a.END): P.DONE,
    (P.STREAMING, w2a.EXACT): P.FULL,
    (P.STREAMING, w2a.EXCESS): P.CUT,
    (P.IDLE, w2a.ERROR_PAGE): P.DONE,
    (P.STARTED, w2a.ERROR_PAGE): P.DONE,
    (P.STARTED, w2a.WRITE): P.STARTED,
    (P.STARTED, w2a.HEADERS): P.STREAMING,
    (P.STREAMING, w2a.WRITE): P.STREAMING,
    (P.FULL, w2a.WRITE): P.FULL,
    (P.CUT, w2a.WRITE): P.CUT,
}


def w2a_why(state: w2a.Progress, event: int) -> str:
    if event == w2a.START:
        return "start_response() was called a second time without exc_info"
    return {
        (P.IDLE, w2a.CHUNK): "produced body bytes before calling start_response()",
        (P.IDLE, w2a.END): "returned without calling start_response()",
        (P.IDLE, w2a.WRITE): "write() was called before start_response()",
        (P.DONE, w2a.WRITE): "write() was called after the response was complete",
    }.get((state, event), f"{w2a.EVENTS[event]} in state {state.name}")


W2A_PAIRS = list(itertools.product(P, range(len(w2a.EVENTS))))


@pytest.mark.parametrize(
    ("state", "event"), W2A_PAIRS, ids=[f"{s.name}-{w2a.EVENTS[e]}" for s, e in W2A_PAIRS]
)
def test_w2a_progress_every_pair(state: w2a.Progress, event: int) -> None:
    expected = W2A_LEGAL.get((state, event))
    if expected is not None:
        new = w2a.advance(int(state), event)
        assert new == expected
        assert type(new) is int  # plain ints: the hot path compares them by identity
        assert w2a.NEXT[state][event] is new  # the inlined form reads the same table
        return
    assert w2a.NEXT[state][event] is None
    with pytest.raises(ProtocolError) as info:
        w2a.advance(int(state), event)
    text = str(info.value)
    assert "PEP 3333 §" in text  # the rule, with its section
    assert w2a_why(state, event) in text


def test_w2a_plain_constants() -> None:
    # The module-level states are the Progress values as exact ints, in order (a state
    # >= FULL is complete), and no transition leads back to IDLE (0 is falsy: the
    # inlined ``NEXT[s][e] or illegal(s, e)`` relies on it).
    names = ("IDLE", "STARTED", "STREAMING", "FULL", "DONE", "CUT")
    assert [getattr(w2a, n) for n in names] == [int(getattr(P, n)) for n in names]
    assert all(type(getattr(w2a, n)) is int for n in names)
    assert all(new != P.IDLE for new in w2a.TRANSITIONS.values())
    complete = {p for p in P if p >= P.FULL}
    assert complete == {P.FULL, P.DONE, P.CUT}


# ---------------------------------------------------------------- lifespan outcomes


def _app(behaviour: str) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        if behaviour == "raises":
            raise ValueError("no lifespan here")
        if behaviour == "returns":
            return
        await send({"type": f"lifespan.startup.{behaviour}", "message": "broken"})
        if behaviour == "complete":
            await receive()
            await send({"type": "lifespan.shutdown.complete"})

    return app


OUTCOMES = [
    ("complete", LifespanOutcome.COMPLETE),
    ("failed", LifespanOutcome.FAILED),
    ("raises", LifespanOutcome.UNSUPPORTED),
    ("returns", LifespanOutcome.UNSUPPORTED),
]


@pytest.mark.parametrize(("behaviour", "outcome"), OUTCOMES)
def test_lifespan_driver_outcome(behaviour: str, outcome: LifespanOutcome) -> None:
    """ASGIToWSGI's driver (asyncio only: it runs on the pool's asyncio loops)."""

    async def main() -> LifespanOutcome:
        lifespan = Lifespan(_app(behaviour), asyncio.get_running_loop(), "auto", 5.0, 5.0)
        assert lifespan.status is LifespanOutcome.PENDING
        await lifespan.startup()
        status = lifespan.status
        await lifespan.shutdown()
        return status

    assert asyncio.run(main()) is outcome


@pytest.mark.parametrize(("behaviour", "outcome"), OUTCOMES)
async def test_fanout_mount_outcome(behaviour: str, outcome: LifespanOutcome) -> None:
    """The dispatcher's fan-out (anyio): the same app, the same outcome."""
    mount = _Mount("/m", _app(behaviour), {"type": "lifespan", "state": {}})
    async with anyio.create_task_group() as tg:
        tg.start_soon(mount.run)
        with anyio.fail_after(5):
            await mount.started.wait()
        assert mount.startup is outcome
        tg.cancel_scope.cancel()


def test_lifespan_off_outcome() -> None:
    async def main() -> LifespanOutcome:
        lifespan = Lifespan(_app("complete"), asyncio.get_running_loop(), "off", 5.0, 5.0)
        await lifespan.startup()  # nothing runs
        return lifespan.status

    assert asyncio.run(main()) is LifespanOutcome.OFF
