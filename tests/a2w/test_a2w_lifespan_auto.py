"""Issue 13 point 5: in ``auto`` mode an app that does not speak lifespan but does not
raise either is decided "unsupported" at once (a second ``receive()`` before startup
was answered, or any non-lifespan message) and served, as a2wsgi serves it (it has no
lifespan); ``on`` mode fails loudly."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest
from a2wsgi import ASGIMiddleware

from bridgeway._types import Receive, Scope, Send
from tests.support.a2w_driver import StartResponseRecorder, call, make_environ, respond, serving


async def _unaware(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:  # a lifespan-unaware app: waits for messages for ever
            await receive()
    await respond(send, b"served")


async def receive_first(scope: Scope, receive: Receive, send: Send) -> None:
    """A middleware that calls receive() for every scope type before the app."""
    first = await receive()

    async def replay() -> Any:
        return first

    await _unaware(scope, replay if scope["type"] != "lifespan" else receive, send)


async def sends_http_start(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that answers every scope with http.response.start, ignores the error."""
    try:
        await send({"type": "http.response.start", "status": 200, "headers": []})
    except RuntimeError:
        if scope["type"] == "lifespan":
            await receive()
            await receive()  # keeps waiting
            return
        raise
    await send({"type": "http.response.body", "body": b"served"})


APPS = {"receive-first": receive_first, "sends-http-start": sends_http_start}


@pytest.mark.parametrize("name", list(APPS))
def test_auto_serves_at_once_with_a_warning_naming_the_rule(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "bridgeway")
    with serving(APPS[name], startup_timeout=30.0) as adapter:
        for _ in range(2):
            result = call(adapter)
            assert (result.code, result.body) == (200, b"served")
    warnings = [
        r.getMessage() for r in caplog.records if "does not speak lifespan" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "a second receive() before startup was answered" in warnings[0]


@pytest.mark.parametrize("name", list(APPS))
def test_a2wsgi_reference_serves_them(name: str) -> None:
    middleware = ASGIMiddleware(cast(Any, APPS[name]))
    body = b"".join(middleware(cast(Any, make_environ()), cast(Any, StartResponseRecorder())))
    assert body == b"served"


@pytest.mark.parametrize("name", list(APPS))
def test_on_mode_fails_loudly(name: str, caplog: pytest.LogCaptureFixture) -> None:
    with serving(APPS[name], lifespan="on", startup_timeout=30.0) as adapter:
        assert call(adapter).code == 500
    assert "does not speak lifespan" in caplog.text
