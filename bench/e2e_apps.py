"""The apps ``bench.e2e`` serves, as ``bench.e2e_apps:NAME`` for uvicorn and gunicorn.

Each name is built on first access (module ``__getattr__``), so a server imports only the
framework it serves: gunicorn serving ``raw_wsgi`` never imports FastAPI.

| name | kind | what |
|---|---|---|
| ``flask_native`` | WSGI | a Flask hello app |
| ``flask_bridgeway`` | ASGI | it through ``bridgeway.WSGIToASGI`` |
| ``flask_a2wsgi`` | ASGI | it through ``a2wsgi.WSGIMiddleware`` |
| ``flask_uvicorn_wsgi`` | ASGI | it through ``uvicorn.middleware.wsgi._WSGIMiddleware`` |
| ``flask_starlette_wsgi`` | ASGI | it through ``starlette.middleware.wsgi.WSGIMiddleware`` |
| ``flask_bridgeway_strict`` | ASGI | Flask through ``WSGIToASGI(close_after_send=True)`` |
| ``fastapi_native`` | ASGI | a FastAPI hello app |
| ``fastapi_bridgeway`` | WSGI | it through ``bridgeway.ASGIToWSGI`` |
| ``fastapi_bridgeway_uvloop`` | WSGI | it through ``ASGIToWSGI`` on uvloop loops |
| ``fastapi_a2wsgi`` | WSGI | it through ``a2wsgi.ASGIMiddleware`` |
| ``fastapi_floor`` | WSGI | it run on a per-thread loop, no translation (the floor) |
| ``raw_wsgi`` | WSGI | a bare WSGI hello callable (the WSGI server's ceiling) |

``uvicorn.middleware.wsgi.WSGIMiddleware`` *is* a2wsgi's class whenever a2wsgi is
installed; uvicorn's own implementation is the private ``_WSGIMiddleware``. Starlette's
``WSGIMiddleware`` is deprecated by Starlette; its import warning is silenced here, as is
uvicorn's. Every adapter runs with its default settings.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Callable[[bytes], object]]


def raw_wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def _flask() -> Any:
    from flask import Flask

    app = Flask("bench_e2e")

    @app.get("/")
    def hello() -> str:
        return "hello"

    return app


def _fastapi() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def _uvicorn_wsgi(app: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from uvicorn.middleware import wsgi

        return wsgi._WSGIMiddleware(app)


def _starlette_wsgi(app: Any) -> Any:
    from starlette.exceptions import StarletteDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from starlette.middleware.wsgi import WSGIMiddleware

        return WSGIMiddleware(app)


def _bridgeway_w2a(app: Any, **options: Any) -> Any:
    from bridgeway import WSGIToASGI

    return WSGIToASGI(app, **options)


def _bridgeway_a2w(app: Any, **options: Any) -> Any:
    from bridgeway import ASGIToWSGI

    return ASGIToWSGI(app, **options)


def _bridgeway_a2w_uvloop(app: Any) -> Any:
    import uvloop

    return _bridgeway_a2w(app, loop_factory=uvloop.new_event_loop)


def _a2wsgi_w2a(app: Any) -> Any:
    from a2wsgi import WSGIMiddleware

    return WSGIMiddleware(app)


def _floor_a2w(app: Any) -> Any:
    """The least any ASGI->WSGI bridge does: run the app to completion on a loop of the
    calling thread with a fixed scope, and return its body (not an adapter: no
    streaming, no lifespan, no disconnect; the in-process suite's floor)."""
    from bench.a2w_inprocess import floor

    return floor(app)


def _a2wsgi_a2w(app: Any) -> Any:
    from a2wsgi import ASGIMiddleware

    return ASGIMiddleware(app)


BUILDERS: dict[str, Callable[[], Any]] = {
    "raw_wsgi": lambda: raw_wsgi_app,
    "flask_native": _flask,
    "flask_bridgeway": lambda: _bridgeway_w2a(_flask()),
    "flask_a2wsgi": lambda: _a2wsgi_w2a(_flask()),
    "flask_uvicorn_wsgi": lambda: _uvicorn_wsgi(_flask()),
    "flask_starlette_wsgi": lambda: _starlette_wsgi(_flask()),
    "flask_bridgeway_strict": lambda: _bridgeway_w2a(_flask(), close_after_send=True),
    "fastapi_native": _fastapi,
    "fastapi_bridgeway": lambda: _bridgeway_a2w(_fastapi()),
    "fastapi_bridgeway_uvloop": lambda: _bridgeway_a2w_uvloop(_fastapi()),
    "fastapi_a2wsgi": lambda: _a2wsgi_a2w(_fastapi()),
    "fastapi_floor": lambda: _floor_a2w(_fastapi()),
}


def __getattr__(name: str) -> Any:
    builder = BUILDERS.get(name)
    if builder is None:
        raise AttributeError(name)
    app = builder()
    globals()[name] = app
    return app
