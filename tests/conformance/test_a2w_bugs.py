"""bridgeway bugs found by the ASGIToWSGI conformance suite, reproduced in-process.

Each test failed until its bug was fixed (never xfail); fixed ones stay as regression
tests. The first two were fixed in 7d2c8de. The same behaviour is checked through every
WSGI server by ``test_a2w_conformance.py`` (the test named in each docstring).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

from bridgeway import ASGIToWSGI
from tests.support.asgi_types import Receive, Send


def _environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def _call(adapter: ASGIToWSGI) -> tuple[str, bytes]:
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(status)

    result = adapter(_environ(), start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return statuses[-1], body


def test_body_after_a_complete_response_with_content_length_raises() -> None:
    """A2W-SEND-09 (``test_message_after_the_final_body_raises``, every server).

    After ``more_body=False`` a further ``http.response.body`` must raise (bridgeway's
    documented choice, as uvicorn). The bug: without a ``content-length`` header it did
    (``ProtocolError``); with one that the body filled exactly, ``send()`` returned
    silently: the early return meant for "excess after a cut-off at Content-Length" in
    ``Request.send`` (``self.left == 0`` and the cycle DONE) also matched a response that
    had completed normally.
    """
    outcome: list[str | None] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"complete"})
        try:
            await send({"type": "http.response.body", "body": b"extra"})
        except RuntimeError as exc:
            outcome.append(type(exc).__name__)
        else:
            outcome.append(None)

    adapter = ASGIToWSGI(app, lifespan="off")
    try:
        assert _call(adapter) == ("200 OK", b"complete")
    finally:
        adapter.shutdown()  # waits for the app's coroutine, which runs on after the body
    assert outcome == ["ProtocolError"]


def test_pathsend_is_advertised_and_bridged(tmp_path: Path) -> None:
    """EXT-06 (``test_pathsend_is_advertised_and_bridged``, every server).

    The bug: ``scope["extensions"]`` had no ``http.response.pathsend`` (bridgeway
    advertised no extension at all), and an app that sent ``http.response.pathsend``
    anyway got ``ValueError: unknown ASGI message type``, so Starlette's ``FileResponse``
    could not use the server's ``wsgi.file_wrapper``/sendfile path.
    """
    path = tmp_path / "file.bin"
    path.write_bytes(b"0123456789" * 1000)
    advertised: list[bool] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        advertised.append("http.response.pathsend" in (scope.get("extensions") or {}))
        headers = [(b"content-length", b"10000"), (b"content-type", b"application/octet-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": str(path)})

    adapter = ASGIToWSGI(app, lifespan="off")
    try:
        status, body = _call(adapter)
    finally:
        adapter.shutdown()
    assert advertised == [True]
    assert (status, body) == ("200 OK", path.read_bytes())


def test_a_leftover_task_on_one_loop_does_not_delay_the_others_shutdown() -> None:
    """A2W-LIFE-07 (``test_lifespan_shutdown_for_every_loop_when_the_server_stops``,
    intermittent on werkzeug when the suites of both sides run in one process).

    ``LoopPool.shutdown()`` closes the loops one after another, and ``PooledLoop.close()``
    waits up to ``shutdown_timeout`` for tasks the app left running *before* the next
    loop even gets ``lifespan.shutdown``. One leftover task per loop delays the N-th
    loop's shutdown by (N-1) x ``shutdown_timeout`` (30 s by default): a server that
    kills its worker after its own grace period (gunicorn's 30 s, a SIGKILL after
    SIGTERM) ends the process before the later loops ever see ``lifespan.shutdown``.
    Every live loop should get ``lifespan.shutdown`` at once; the wait for leftover
    tasks should share one deadline.
    """
    import asyncio
    import threading
    import time

    shutdowns: list[float] = []
    overlap = threading.Barrier(2, timeout=5.0)

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            shutdowns.append(time.monotonic())
            await send({"type": "lifespan.shutdown.complete"})
            return
        leftover = asyncio.create_task(asyncio.sleep(3600))  # the app leaves it running
        await asyncio.to_thread(overlap.wait)  # two requests at once: two loops
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        assert not leftover.done()

    adapter = ASGIToWSGI(app, shutdown_timeout=2.0)
    threads = [threading.Thread(target=_call, args=(adapter,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10.0)
    assert adapter.loops_created == 2
    started = time.monotonic()
    adapter.shutdown()
    assert len(shutdowns) == 2
    assert max(shutdowns) - started < 1.0, [round(t - started, 2) for t in shutdowns]
