"""gunicorn settings for the example: gunicorn -c examples/fastapi_on_wsgi/gunicorn.conf.py

Runs ``ASGIToWSGI.shutdown()`` (lifespan shutdown on every event loop of the worker)
when a worker exits, before the interpreter starts its own shutdown.
"""

from __future__ import annotations

from typing import Any

wsgi_app = "examples.fastapi_on_wsgi.app:application"
worker_class = "gthread"
workers = 2
threads = 8


def worker_exit(server: Any, worker: Any) -> None:
    from examples.fastapi_on_wsgi.app import application

    application.shutdown(timeout=10.0)
