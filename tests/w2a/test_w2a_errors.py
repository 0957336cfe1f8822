"""Errors and protocol misuse (W2A-RESP-06, W2A-RESP-12)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from bridgeway import ProtocolError, WSGIToASGI
from bridgeway._types import Environ, StartResponse
from tests.support.w2a_driver import Peer, call, make_scope, refused

pytestmark = pytest.mark.anyio


def bridgeway_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bridgeway" and r.levelno >= logging.ERROR]


def assert_generic_500(peer: Peer) -> None:
    assert peer.status == 500
    assert peer.complete
    assert peer.body == b"Internal Server Error"


class Secret(Exception):
    pass


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("call", id="W2A-RESP-12-in-app-call"),
        pytest.param("first-next", id="W2A-RESP-12-at-first-next"),
        pytest.param("after-start-response", id="W2A-RESP-12-after-start-response"),
    ],
)
async def test_exception_before_headers_propagates_or_is_a_generic_500(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    cause = KeyError("db")

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        def fail() -> None:
            raise Secret("password=hunter2") from cause

        if where == "call":
            fail()
        if where == "after-start-response":
            start_response("200 OK", [("X-Should-Not-Leak", "1")])
            fail()

        def gen() -> Iterator[bytes]:
            start_response("200 OK", [])
            fail()
            yield b""  # pragma: no cover

        return gen()

    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        outcome = await refused(app)
        # The default: the same object, traceback and chain, and no log of ours.
        assert isinstance(outcome.raised, Secret)
        assert outcome.raised.__cause__ is cause
        assert "fail" in [f.name for f in traceback.extract_tb(outcome.raised.__traceback__)]
    # propagate_exceptions=False: bridgeway answers 500 and logs once.
    peer = outcome.peer
    assert_generic_500(peer)
    assert b"hunter2" not in peer.body
    assert peer.header(b"x-should-not-leak") is None
    errors = bridgeway_errors(caplog)
    assert len(errors) == 1  # from the quiet run only: the default run logged nothing
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], Secret)
    assert "Traceback" in caplog.text


@pytest.mark.parametrize("propagate", [True, False])
async def test_exception_after_headers_aborts(
    propagate: bool, caplog: pytest.LogCaptureFixture
) -> None:
    failure = Secret("late failure")

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"1"
        yield b"2"
        yield b"3"
        raise failure

    peer = Peer()
    adapter = WSGIToASGI(app, propagate_exceptions=propagate)
    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        if propagate:
            with pytest.raises(Secret) as raised:
                await call(adapter, make_scope(), peer)
            assert raised.value is failure
        else:
            await call(adapter, make_scope(), peer)
    assert peer.status == 200
    assert peer.body == b"123"
    # never completed as if all was well
    assert peer.final_messages == 0
    assert not peer.complete
    errors = bridgeway_errors(caplog)
    if propagate:
        assert errors == []  # the server logs what propagates: one traceback
    else:
        assert len(errors) == 1
        assert errors[0].exc_info is not None
        assert errors[0].exc_info[1] is failure


async def test_exception_after_write_aborts() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])(b"written")
        raise Secret("after write")

    peer = Peer()
    with pytest.raises(Secret):
        await call(WSGIToASGI(app), make_scope(), peer)
    assert peer.body == b"written"
    assert peer.final_messages == 0


def twice(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [])
    start_response("404 Not Found", [])
    return [b"x"]


def never_called_empty(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return []


def never_called_body(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return [b"body without status"]


def body_then_start(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    yield b"too early"
    start_response("200 OK", [])


def returns_none(environ: Environ, start_response: StartResponse) -> Any:
    start_response("200 OK", [])
    return None


def returns_int(environ: Environ, start_response: StartResponse) -> Any:
    start_response("200 OK", [])
    return 42


def write_before_start(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    write = start_response("200 OK", [])
    write(b"x")  # fine; shows the contrast with the misuse cases
    return [b""]


@pytest.mark.parametrize(
    ("app", "error", "message"),
    [
        pytest.param(
            twice, ProtocolError, r"second time without exc_info", id="start-response-twice"
        ),
        pytest.param(
            never_called_empty,
            ProtocolError,
            r"without calling start_response",
            id="start-response-never-called",
        ),
        pytest.param(
            never_called_body,
            ProtocolError,
            r"body bytes before calling start_response",
            id="body-without-start-response",
        ),
        pytest.param(
            body_then_start,
            ProtocolError,
            r"body bytes before calling start_response",
            id="body-before-start-response",
        ),
        pytest.param(returns_none, ProtocolError, r"not an iterable", id="returns-None"),
        pytest.param(returns_int, ProtocolError, r"not an iterable", id="returns-int"),
    ],
)
async def test_protocol_misuse_names_the_rule(
    app: Callable[..., Any],
    error: type[Exception],
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        outcome = await refused(app)
    assert isinstance(outcome.raised, error)
    assert_generic_500(outcome.peer)
    errors = bridgeway_errors(caplog)
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    raised = errors[0].exc_info[1]
    assert isinstance(raised, error)
    with pytest.raises(error, match=message):
        raise raised
    assert "PEP 3333" in str(raised)


async def test_second_start_response_raises_inside_the_app() -> None:
    caught: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            start_response("404 Not Found", [])
        except ProtocolError as exc:
            caught.append(exc)
        return [b"first wins"]

    peer = await call(WSGIToASGI(app))
    assert len(caught) == 1
    assert peer.status == 200
    assert peer.header(b"x-first") == b"1"
    assert peer.body == b"first wins"


async def test_write_before_start_response_contrast() -> None:
    peer = await call(WSGIToASGI(write_before_start))
    assert peer.body == b"x"
    assert peer.complete
