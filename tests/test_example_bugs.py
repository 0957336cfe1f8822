"""Minimal reproductions of bridgeway bugs found while writing the examples.

ASGIToWSGI-EXIT: the lifespan shutdown that ``ASGIToWSGI`` runs at interpreter exit is
registered with ``atexit``, but the interpreter joins every non-daemon thread *before*
it runs ``atexit`` hooks. A lifespan resource owning a non-daemon thread (aiosqlite's
connection thread does; so do thread-pool executors and several DB drivers) then keeps
the process alive for ever: the shutdown that would close it never runs. Seen as the
fastapi_on_wsgi example's gunicorn worker never exiting after SIGTERM (the master
SIGKILLs it after graceful_timeout, and the lifespan shutdown is lost). Running the hook
through ``threading._register_atexit`` (what ``concurrent.futures`` does) would run it
before the join.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import threading
    from wsgiref.util import setup_testing_defaults

    from bridgeway import ASGIToWSGI

    stop = threading.Event()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    # a resource with a non-daemon thread of its own, like aiosqlite's
                    threading.Thread(target=stop.wait, args=(30,)).start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    stop.set()
                    print("lifespan shutdown ran", flush=True)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    application = ASGIToWSGI(app)
    environ = {}
    setup_testing_defaults(environ)
    body = b"".join(application(environ, lambda status, headers, exc_info=None: None))
    print("served", body.decode(), flush=True)
    # The process now exits, as a WSGI server's worker does at shutdown.
    """
)


def test_exit_runs_lifespan_shutdown_before_joining_non_daemon_threads() -> None:
    try:
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=8
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            "the process did not exit within 8 s: the lifespan shutdown never ran, so the"
            f" resource's non-daemon thread kept it alive (stdout: {exc.stdout!r})"
        ) from None
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["served ok", "lifespan shutdown ran"]
