"""Issue 13 point 6: ``ASGIToWSGI(..., wait_background=True)`` lets a WSGI test client
see the work a FastAPI app does after its response (``yield`` dependencies' teardown,
``BackgroundTasks``) as soon as its call returns, as an in-process ASGI test client
does natively; by default that work finishes off the caller's thread, after the response.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import flask
import httpx
import pytest
from fastapi import BackgroundTasks, Depends, FastAPI
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.responses import Response
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from bridgeway import ASGIToWSGI
from tests.support.waiting import TIMEOUT


def fastapi_app(events: list[str], release: threading.Event) -> FastAPI:
    """``/dep`` uses a dependency with ``yield`` and queues a background task; both
    record when they ran. The background task first waits for ``release`` (set at once
    unless a test holds it), so the default mode's race can be shown deterministically."""
    api = FastAPI()

    async def resource() -> AsyncIterator[str]:
        events.append("dependency started")
        yield "resource"
        events.append("dependency completed")

    def task() -> None:
        release.wait(TIMEOUT)
        events.append("background task ran")

    @api.get("/dep")
    async def dep(background: BackgroundTasks, value: str = Depends(resource)) -> dict[str, str]:
        background.add_task(task)
        return {"value": value}

    @api.get("/stream")
    async def stream(background: BackgroundTasks) -> StreamingResponse:
        background.add_task(task)

        async def body() -> AsyncIterator[bytes]:
            for part in (b"a", b"b", b"c"):
                yield part

        return StreamingResponse(body(), background=background)

    return api


# The native order: FastAPI runs the background tasks inside the dependency's scope.
EXPECTED = ["dependency started", "background task ran", "dependency completed"]


@pytest.fixture
def released() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


async def test_native_reference_asgi_test_client(released: threading.Event) -> None:
    """Natively, an in-process ASGI test client (httpx's ``ASGITransport``, as
    Starlette's ``TestClient``) returns once the app's call returned: all work done."""
    events: list[str] = []
    transport = httpx.ASGITransport(app=fastapi_app(events, released))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/dep")).json() == {"value": "resource"}
        assert events == EXPECTED


@pytest.fixture
def adapter_for() -> Iterator[Any]:
    made: list[ASGIToWSGI] = []

    def make(app: Any, **options: Any) -> ASGIToWSGI:
        adapter = ASGIToWSGI(app, **options)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.shutdown()


@pytest.mark.parametrize("loop_mode", ["inline", "thread"])
def test_werkzeug_client_sees_teardown_and_background_work(
    adapter_for: Any, released: threading.Event, loop_mode: str
) -> None:
    events: list[str] = []
    adapter = adapter_for(fastapi_app(events, released), wait_background=True, loop_mode=loop_mode)
    client = Client(adapter)
    for _ in range(3):
        events.clear()
        response = client.get("/dep")
        assert response.json == {"value": "resource"}
        assert events == EXPECTED
    events.clear()
    streamed = client.get("/stream")  # unbuffered: ends with the last chunk, not close()
    assert b"".join(streamed.iter_encoded()) == b"abc"
    assert events == ["background task ran"]
    streamed.close()


def test_flask_test_client_with_a_mounted_fastapi_app(
    adapter_for: Any, released: threading.Event
) -> None:
    events: list[str] = []
    flask_app = flask.Flask(__name__)
    flask_app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        flask_app.wsgi_app,
        {"/api": adapter_for(fastapi_app(events, released), wait_background=True)},
    )
    with flask_app.test_client() as client:
        assert client.get("/api/dep").json == {"value": "resource"}
        assert events == EXPECTED


def test_default_finishes_the_work_after_the_client_call_returns(adapter_for: Any) -> None:
    """Without the option the work runs after the response, off the caller's thread
    (A2W-SEND-11): held back here, it has not run when the call returns, and runs once
    released."""
    events: list[str] = []
    held = threading.Event()
    adapter = adapter_for(fastapi_app(events, held))
    response = Client(adapter).get("/dep")
    assert response.json == {"value": "resource"}
    assert "background task ran" not in events
    held.set()
    deadline = time.monotonic() + TIMEOUT
    while "background task ran" not in events and time.monotonic() < deadline:
        time.sleep(0.01)  # polling interval, bounded by the deadline
    assert "background task ran" in events


async def _late(message: str) -> None:
    await anyio.sleep(0.05)  # later than the few loop steps the default mode waits
    raise RuntimeError(message)


def test_an_error_in_work_after_the_response_reaches_the_test_client(adapter_for: Any) -> None:
    """As natively through an in-process ASGI client (httpx's ASGITransport raises the
    app's exception), with ``wait_background=True`` a background task's exception is
    raised to the WSGI test client once the body is out; by default that work runs
    off the caller's thread and the error is only logged (A2W-SEND-05)."""
    app = Response(b"hello", background=BackgroundTask(_late, "background failure"))

    async def natively() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.get("/")

    with pytest.raises(RuntimeError, match="background failure"):
        anyio.run(natively)
    adapter = adapter_for(app, wait_background=True)
    response = Client(adapter).get("/", buffered=False)
    assert response.status_code == 200
    with pytest.raises(RuntimeError, match="background failure"):
        response.get_data()
