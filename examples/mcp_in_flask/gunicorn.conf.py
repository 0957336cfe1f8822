"""gunicorn settings for an app with an MCP server mounted in it.

    gunicorn -c examples/mcp_in_flask/gunicorn.conf.py -b 127.0.0.1:8000
    gunicorn -c examples/mcp_in_flask/gunicorn.conf.py examples.django_migration.wsgi:application

One worker process with threads: a stateful MCP session lives in the process that
created it (with ``MCP_STATELESS=1`` any number of workers works). Each connected
stateful client keeps a GET stream open, which holds one thread for as long as its
session lasts: ``threads`` must cover the clients connected at once plus the calls in
flight.

Two hooks make a worker stop the way uvicorn stops the same app:

- at SIGTERM, open SSE streams are told to end (sse-starlette, which the MCP SDK
  streams with, does this by itself under uvicorn): gunicorn then finishes the calls in
  flight and exits, instead of waiting ``graceful_timeout`` (30 s) for sessions' GET
  streams and killing the worker before its lifespan shutdown;
- at exit, the lifespan shutdown of the app's ASGI part (the MCP session manager) runs.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

wsgi_app = "examples.mcp_in_flask.app:application"
worker_class = "gthread"
workers = 1
threads = 16


def post_worker_init(worker: Any) -> None:
    from sse_starlette.sse import AppStatus

    stop = worker.handle_exit

    def handle_exit(sig: int, frame: FrameType | None) -> None:
        AppStatus.should_exit = True  # sse-starlette's documented stop flag
        stop(sig, frame)

    signal.signal(signal.SIGTERM, handle_exit)


def worker_exit(server: Any, worker: Any) -> None:
    shutdown = getattr(worker.wsgi, "shutdown", None)  # WSGIDispatcher / ASGIToWSGI
    if shutdown is not None:
        shutdown(timeout=10.0)
