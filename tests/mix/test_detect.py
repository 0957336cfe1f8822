"""app_kind / as_asgi / as_wsgi on framework objects, plain callables and ambiguous ones."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import fastapi
import flask
import pytest
import quart
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from werkzeug.test import Client

from bridgeway import (
    ASGIDispatcher,
    ASGIToWSGI,
    WSGIDispatcher,
    WSGIToASGI,
    app_kind,
    as_asgi,
    as_wsgi,
)
from bridgeway._types import Receive, Scope, Send
from tests.live.mixed_django import django_asgi, django_wsgi
from tests.support.w2a_driver import call, make_scope

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def wsgi_function(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain wsgi"]


async def asgi3_function(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"plain asgi3"})


def asgi2_function(scope: Scope) -> Callable[[Receive, Send], Any]:
    async def instance(receive: Receive, send: Send) -> None:
        await asgi3_function(scope, receive, send)

    return instance


class ASGI2Class:
    """The ASGI 2 class form: ``ASGI2Class(scope)`` is the instance."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        await asgi3_function(self.scope, receive, send)


class AsyncCallable:
    """An ASGI 3 app written as a class with ``async __call__`` (middleware style)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await asgi3_function(scope, receive, send)


class WSGIClass:
    """PEP 3333's class form: calling the class is calling the app."""

    def __init__(self, environ: WSGIEnvironment, start_response: StartResponse) -> None:
        start_response("200 OK", [])

    def __iter__(self) -> Iterable[bytes]:
        return iter([b"class wsgi"])


def _flask() -> flask.Flask:
    app = flask.Flask("detect")
    app.add_url_rule("/", "index", lambda: "flask")
    return app


def _quart() -> quart.Quart:
    app = quart.Quart("detect")

    @app.route("/")
    async def index() -> str:
        return "quart"

    return app


def _starlette() -> Starlette:
    return Starlette(routes=[Route("/", lambda request: PlainTextResponse("starlette"))])


def _fastapi() -> fastapi.FastAPI:
    app = fastapi.FastAPI()
    app.get("/")(lambda: "fastapi")
    return app


CASES: list[tuple[str, Callable[[], Any], str]] = [
    ("flask", _flask, "wsgi"),
    ("django-wsgi", lambda: django_wsgi, "wsgi"),
    ("django-asgi", lambda: django_asgi, "asgi3"),
    ("fastapi", _fastapi, "asgi3"),
    ("starlette", _starlette, "asgi3"),
    ("quart", _quart, "asgi3"),
    ("wsgi-function", lambda: wsgi_function, "wsgi"),
    ("wsgi-class", lambda: WSGIClass, "wsgi"),
    ("asgi3-function", lambda: asgi3_function, "asgi3"),
    ("asgi3-partial", lambda: functools.partial(asgi3_function), "asgi3"),
    ("async-callable-instance", AsyncCallable, "asgi3"),
    ("asgi2-function", lambda: asgi2_function, "asgi2"),
    ("asgi2-class", lambda: ASGI2Class, "asgi2"),
    ("bridgeway-w2a", lambda: WSGIToASGI(wsgi_function), "asgi3"),
    ("bridgeway-a2w", lambda: ASGIToWSGI(asgi3_function), "wsgi"),
    ("asgi-dispatcher", lambda: ASGIDispatcher(), "asgi3"),
    ("wsgi-dispatcher", lambda: WSGIDispatcher(), "wsgi"),
]


@pytest.mark.parametrize(("make", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_kind_and_wrapping(make: Callable[[], Any], kind: str) -> None:
    app = make()
    assert app_kind(app) == kind
    asgi, wsgi = as_asgi(app), as_wsgi(app)
    if isinstance(app, WSGIToASGI | ASGIToWSGI):
        # An adapter is unwrapped, not wrapped again (test_adapters_are_unwrapped_...).
        assert (asgi, wsgi) == ((app, app.app) if kind == "asgi3" else (app.app, app))
    elif kind == "wsgi":
        assert wsgi is app
        assert app_kind(asgi) == "asgi3"
        if not isinstance(app, WSGIDispatcher):
            assert isinstance(asgi, WSGIToASGI)
            assert asgi.app is app
    else:
        assert app_kind(wsgi) == "wsgi"
        assert (asgi is app) == (kind == "asgi3")
        if not isinstance(app, ASGIDispatcher):
            assert isinstance(wsgi, ASGIToWSGI)
            wsgi.shutdown(5.0)


def test_adapters_are_unwrapped_not_wrapped_twice() -> None:
    assert as_wsgi(WSGIToASGI(wsgi_function)) is wsgi_function
    assert as_asgi(ASGIToWSGI(asgi3_function)) is asgi3_function
    assert isinstance(as_wsgi(ASGIDispatcher({"/a": wsgi_function})), WSGIDispatcher)
    assert isinstance(as_asgi(WSGIDispatcher({"/a": asgi3_function})), ASGIDispatcher)


@pytest.mark.parametrize(
    "make", [_flask, lambda: wsgi_function, lambda: WSGIClass], ids=["flask", "fn", "class"]
)
async def test_wsgi_apps_made_asgi_serve_requests(make: Callable[[], Any]) -> None:
    peer = await call(as_asgi(make()), make_scope())
    assert peer.status == 200
    assert peer.body in (b"flask", b"plain wsgi", b"class wsgi")


@pytest.mark.parametrize(
    ("make", "body"),
    [
        (_quart, b"quart"),
        (_starlette, b"starlette"),
        (lambda: asgi2_function, b"plain asgi3"),
        (lambda: ASGI2Class, b"plain asgi3"),
        (AsyncCallable, b"plain asgi3"),
    ],
    ids=["quart", "starlette", "asgi2-fn", "asgi2-class", "async-callable"],
)
def test_asgi_apps_made_wsgi_serve_requests(make: Callable[[], Any], body: bytes) -> None:
    app = as_wsgi(make())
    try:
        response = Client(app).get("/", buffered=True)
        assert (response.status_code, response.get_data()) == (200, body)
    finally:
        assert isinstance(app, ASGIToWSGI)
        app.shutdown(5.0)


async def test_asgi2_made_single_serves_requests() -> None:
    for app in (asgi2_function, ASGI2Class):
        peer = await call(as_asgi(app), make_scope())
        assert peer.body == b"plain asgi3"


def _sync3(a: Any, b: Any, c: Any) -> None: ...


async def _async2(a: Any, b: Any) -> None: ...


def _varargs(*args: Any) -> None: ...


class _Marked:
    _asgi_single_callable = True

    def __call__(self, *args: Any) -> Any: ...


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (42, r"builtins\.int \(42\) is not callable"),
        (_sync3, r"_sync3 is: a sync callable taking 3 arguments"),
        (_async2, r"_async2 is: an async callable taking 2 arguments"),
        (_varargs, r"_varargs is: a sync callable taking \*args"),
        (fastapi.FastAPI, r"FastAPI is a class whose instances are ASGI apps: pass an instance"),
        (flask.Flask, r"flask\.app\.Flask is a class whose instances are WSGI apps"),
        (_Marked.__mro__[1], r"cannot tell what kind of app the class builtins\.object is"),
    ],
    ids=[
        "not-callable",
        "sync-3",
        "async-2",
        "varargs",
        "asgi-class",
        "wsgi-framework-class",
        "unknown-class",
    ],
)
def test_unclear_apps_raise_type_error_naming_them(app: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        app_kind(app)
    with pytest.raises(TypeError, match=message):
        as_asgi(app)


def test_asgiref_hints_decide() -> None:
    assert app_kind(_Marked()) == "asgi3"
