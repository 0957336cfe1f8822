"""Apps of both kinds behind one dispatcher, for the dispatcher and CLI tests
(``tests.live.mixed_apps:NAME``, from a server and in the tests alike).

Each app answers JSON saying who it is and what prefixes it saw:

- ``flask_app`` (WSGI): ``{"app": "flask", "script_root", "path", "url_for"}``;
- ``fastapi_app`` (ASGI): ``{"app": "fastapi", "root_path", "path", "url_for"}``;
  ``POST /echo`` echoes the body; other paths 404;
- ``raw_wsgi`` (a plain WSGI function): ``{"app": "raw", "SCRIPT_NAME", "PATH_INFO",
  "body"}``.

``mixed_asgi`` / ``mixed_wsgi``: ``/`` Flask, ``/api`` FastAPI, ``/api/legacy`` raw WSGI,
``/shop`` Flask again (so ``url_for`` shows the prefix). ``fallback_asgi`` /
``fallback_wsgi``: ``new_api`` (FastAPI, only ``POST /echo``) first, then ``raw_wsgi``
on 404/405, with a 1 KiB replay limit. ``lifespan_failing``: two Starlette mounts, the
startup of ``/bad`` raises.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import fastapi
import flask
from starlette.applications import Starlette

from bridgeway import ASGIDispatcher

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

REPLAY_LIMIT = 1024

flask_app = flask.Flask("mixed_flask")


@flask_app.route("/", defaults={"sub": ""}, methods=["GET", "POST"])
@flask_app.route("/<path:sub>", methods=["GET", "POST"])
def flask_page(sub: str) -> dict[str, Any]:
    return {
        "app": "flask",
        "script_root": flask.request.script_root,
        "path": flask.request.path,
        "url_for": flask.url_for("flask_page", sub="x"),
    }


fastapi_app = fastapi.FastAPI()


@fastapi_app.post("/echo")
async def echo(request: fastapi.Request) -> dict[str, Any]:
    return {"app": "fastapi", "body": (await request.body()).decode("latin-1")}


@fastapi_app.get("/{sub:path}", name="page")
async def fastapi_page(request: fastapi.Request, sub: str) -> dict[str, Any]:
    return {
        "app": "fastapi",
        "root_path": request.scope["root_path"],
        "path": request.scope["path"],
        "url_for": request.url_for("page", sub="x").path,
    }


new_api = fastapi.FastAPI()


@new_api.post("/echo")
async def new_echo(request: fastapi.Request) -> dict[str, Any]:
    return {"app": "new", "body": (await request.body()).decode("latin-1")}


def raw_wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if environ.get("wsgi.input_terminated") and not length:
        body = environ["wsgi.input"].read()  # a chunked body (PEP 3333 extension)
    else:
        body = environ["wsgi.input"].read(length) if length else b""
    data = {
        "app": "raw",
        "method": environ["REQUEST_METHOD"],
        "SCRIPT_NAME": environ.get("SCRIPT_NAME", ""),
        "PATH_INFO": environ.get("PATH_INFO", ""),
        "body": body.decode("latin-1"),
    }
    out = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [out]


mixed_asgi = ASGIDispatcher(
    {"/api": fastapi_app, "/api/legacy": raw_wsgi, "/shop": flask_app}, default=flask_app
)
mixed_wsgi = mixed_asgi.as_wsgi()

fallback_asgi = ASGIDispatcher(
    default=new_api,
    fallback=raw_wsgi,
    fallback_on={404, 405},
    replay_limit=REPLAY_LIMIT,
)
fallback_wsgi = fallback_asgi.as_wsgi()


@contextlib.asynccontextmanager
async def _good_lifespan(app: Starlette) -> AsyncIterator[None]:
    yield


@contextlib.asynccontextmanager
async def _bad_lifespan(app: Starlette) -> AsyncIterator[None]:
    raise RuntimeError("the database is down")
    yield


# Two ASGI mounts, one whose startup fails: the server must refuse to start.
lifespan_failing = ASGIDispatcher(
    {"/good": Starlette(lifespan=_good_lifespan), "/bad": Starlette(lifespan=_bad_lifespan)}
)
