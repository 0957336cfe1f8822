"""A WSGI server must call ``close()`` on the iterable (PEP 3333); werkzeug's dev server
skips it when the client reset the connection (its drain read after the response
raises before it gets there). ASGIToWSGI must not leak the request's event loop then:
the loop goes back to the pool once the response was fully iterated, and a response
abandoned mid-stream is cleaned up when the iterable is collected. Observed through the
lifespan, which runs once per loop: a leaked loop makes the next request start another.
"""

from __future__ import annotations

import gc
import threading
from typing import Any, cast

from bridgeway._types import Receive, Scope, Send
from tests.support.a2w_driver import StartResponseRecorder, make_environ, serving
from tests.support.waiting import TIMEOUT, wait_until


def streaming_app(events: list[str], ended: threading.Event) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            events.append("startup")
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for part in (b"a", b"b", b"c"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            ended.set()

    return app


def test_a_fully_iterated_response_returns_its_loop_without_close() -> None:
    events: list[str] = []
    ended = threading.Event()
    with serving(streaming_app(events, ended)) as adapter:
        for _ in range(3):
            iterable = adapter(make_environ(), StartResponseRecorder())
            assert b"".join(iterable) == b"abc"  # iterated to the end; close() never called
            assert ended.wait(TIMEOUT)
            ended.clear()
            del iterable
        # One loop served all three: none was left checked out.
        assert events == ["startup"]


def test_an_abandoned_response_is_cleaned_up_when_collected() -> None:
    events: list[str] = []
    ended = threading.Event()
    with serving(streaming_app(events, ended)) as adapter:
        iterable = adapter(make_environ(), StartResponseRecorder())
        assert next(iter(iterable)) == b"a"  # the client reset mid-stream; no close()
        del iterable
        gc.collect()
        assert ended.wait(TIMEOUT), "the app never learnt that its client was gone"
        ended.clear()
        # The app's end is finished off the caller's thread, which then returns the loop.
        wait_until(lambda: not any(t.name == "bridgeway-asgi-after" for t in threading.enumerate()))
        second = adapter(make_environ(), StartResponseRecorder())
        assert b"".join(second) == b"abc"
        cast(Any, second).close()  # as a WSGI server would (PEP 3333)
        assert events == ["startup"]  # the first request's loop came back
