"""Issue 13 point 3 (A2W-LIFE-09): each request runs in a copy of the calling WSGI
thread's context, taken at the call; nothing the app sets leaks back or into later
requests. Native reference: a WSGI middleware's ContextVar is seen by the WSGI app it
wraps; OpenTelemetry's WSGI middleware makes the inner app's span its child."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from typing import Any

import pytest
from werkzeug.test import Client

from bridgeway._types import Receive, Scope, Send
from tests.live.lifecycle_apps import traced_stack
from tests.support.a2w_driver import call, make_environ, respond, serving

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="default")


def setting(app: Any, value: str) -> Any:
    """A WSGI middleware that sets ``var`` around the app it wraps."""

    def middleware(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        token = var.set(value)
        try:
            return app(environ, start_response)  # type: ignore[no-any-return]
        finally:
            var.reset(token)

    return middleware


def test_native_reference_wsgi_app_sees_the_middleware_value() -> None:
    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [var.get().encode()]

    body = setting(wsgi_app, "from-middleware")(make_environ(), lambda *a: None)
    assert body == [b"from-middleware"]


@pytest.mark.parametrize("loop_mode", ["inline", "thread"])
def test_asgi_app_sees_the_caller_value_and_leaks_nothing(loop_mode: str) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            var.set("from-startup")
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append(var.get())
        var.set("from-app")
        await respond(send, var.get().encode())

    with serving(app, loop_mode=loop_mode) as adapter:
        wrapped = setting(adapter, "from-middleware")
        body = b"".join(wrapped(make_environ(), lambda *a: None))
        assert body == b"from-app"
        assert var.get() == "default"  # nothing leaked back to the caller
        assert call(adapter).code == 200  # a later request on the same loop
        assert adapter.loops_created == 1
    assert seen == ["from-middleware", "default"]


def test_opentelemetry_fastapi_span_is_a_child_of_the_wsgi_span() -> None:
    wsgi, _api, exporter = traced_stack()
    try:
        assert Client(wsgi).get("/hello").json == {"hello": "world"}
    finally:
        wsgi.wsgi.shutdown()  # the ASGIToWSGI inside OpenTelemetry's middleware
    spans = {span.kind.name: span for span in exporter.get_finished_spans()}
    server, inner = spans["SERVER"], spans["INTERNAL"]  # WSGI, then FastAPI
    assert inner.name == "GET /hello"
    outer_ctx, inner_ctx = server.get_span_context(), inner.get_span_context()
    assert inner.parent is not None
    assert outer_ctx is not None
    assert inner_ctx is not None
    assert inner.parent.span_id == outer_ctx.span_id
    assert inner_ctx.trace_id == outer_ctx.trace_id
