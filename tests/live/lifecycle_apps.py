"""Probe apps for the lifecycle fidelity tests (``tests/servers/test_live_a2w_lifecycle.py``):
the same ASGI app served natively (``NAME_app`` under uvicorn) and bridged
(``NAME``, an ``ASGIToWSGI`` under each WSGI server).

- ``sse``: FastAPI. ``/sse?id=X&spec=V`` is a ``StreamingResponse`` over an async
  generator that yields an event every 50 ms and checks ``request.is_disconnected()``;
  its ``finally`` writes marker ``sse-X`` (``$BRIDGEWAY_MARKERS``, see
  ``a2w_apps.marker``). ``spec=2.3`` / ``spec=2.4`` rewrites ``scope["asgi"]
  ["spec_version"]`` first, which picks Starlette's disconnect strategy (at 2.4 it
  relies on ``send()`` raising ``OSError``; below, it listens on ``receive()`` and
  cancels the stream). ``/raw?id=X`` is a raw ASGI stream that listens on ``receive()``
  and whose ``finally`` writes the same marker. ``/leftovers`` reports what the
  streams left behind: requests whose task has not finished, and stream generators
  that were never finalized.
- ``traced``: ``OpenTelemetryMiddleware(setting(ASGIToWSGI(fastapi)))`` with the FastAPI
  app instrumented and the SDK's in-memory exporter; ``/hello`` answers, ``/spans`` returns
  the finished spans, ``/context`` reports what the request saw (see ``seen``) and then
  sets ``leaked``. ``setting`` is a WSGI middleware that sets ``request_var``.
  ``traced_api`` is that FastAPI app alone (natively under uvicorn);
  ``traced_native`` is the native WSGI reference: a plain WSGI app with the same
  ``/context`` and ``/spans`` under the same two middlewares.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import threading
import types
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bridgeway import ASGIToWSGI
from tests.live.a2w_apps import marker
from tests.support.asgi_types import Receive, Scope, Send

# --- sse ------------------------------------------------------------------------------

_streams: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
_sse_api = FastAPI()


async def _events(request: Request, name: str) -> AsyncIterator[bytes]:
    try:
        i = 0
        while not await request.is_disconnected():
            yield f"id: {i}\ndata: tick {i}\n\n".encode()
            i += 1
            await asyncio.sleep(0.05)
    finally:
        marker(name, "finally")


@_sse_api.get("/sse")
async def sse_endpoint(request: Request, id: str = "x") -> StreamingResponse:
    task = asyncio.current_task()
    assert task is not None
    _streams.add(task)
    return StreamingResponse(_events(request, f"sse-{id}"), media_type="text/event-stream")


@_sse_api.get("/leftovers")
async def leftovers() -> JSONResponse:
    suspended = [
        g
        for g in gc.get_objects()
        if isinstance(g, types.AsyncGeneratorType)
        and g.ag_code is _events.__code__
        and g.ag_frame is not None
    ]
    pending = [t for t in _streams if not t.done()]
    return JSONResponse({"generators": len(suspended), "tasks": len(pending)})


async def _raw_stream(scope: Scope, receive: Receive, send: Send) -> None:
    """Listens on ``receive()`` (a server at spec 2.3 need not make ``send()`` raise)
    and ends on ``http.disconnect`` or an ``OSError`` from ``send()``."""
    query = dict(p.partition("=")[::2] for p in scope["query_string"].decode().split("&"))
    headers = [(b"content-type", b"text/event-stream")]
    task = asyncio.current_task()
    assert task is not None
    _streams.add(task)

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.create_task(watch())
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    try:
        i = 0
        while not watcher.done():
            event = f"id: {i}\ndata: tick {i}\n\n".encode()
            await send({"type": "http.response.body", "body": event, "more_body": True})
            i += 1
            await asyncio.wait({watcher}, timeout=0.05)
    finally:
        watcher.cancel()
        marker(f"sse-{query.get('id', 'x')}", "finally")


async def sse_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        query = dict(p.partition("=")[::2] for p in scope["query_string"].decode().split("&"))
        spec = query.get("spec")
        if spec:
            scope = {**scope, "asgi": {**scope["asgi"], "spec_version": spec}}
        if scope["path"] == "/raw":
            await _raw_stream(scope, receive, send)
            return
    await _sse_api(scope, receive, send)


sse = ASGIToWSGI(sse_app)


# --- traced ---------------------------------------------------------------------------

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
# Set by the WSGI middleware ``setting`` around the app it wraps (a log binding, say).
request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="default")
# Set by the app at the end of ``/context``: a later request must not see it (A2W-LIFE-09).
leaked: contextvars.ContextVar[str] = contextvars.ContextVar("leaked", default="default")


def setting(app: WSGIApp, value: str = "from-wsgi-middleware") -> WSGIApp:
    """A WSGI middleware that sets ``request_var`` around the call of the app it wraps."""

    def middleware(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        token = request_var.set(value)
        try:
            return app(environ, start_response)
        finally:
            request_var.reset(token)

    return middleware


def seen() -> dict[str, Any]:
    """What ``/context`` reports: the current span's ids, both variables, the thread and
    the running loop (None in a WSGI app); then it sets ``leaked`` for later requests."""
    context = trace.get_current_span().get_span_context()
    try:
        loop: int | None = id(asyncio.get_running_loop())
    except RuntimeError:
        loop = None
    report = {
        "trace_id": context.trace_id,
        "span_id": context.span_id,
        "request_var": request_var.get(),
        "leaked": leaked.get(),
        "thread": threading.get_ident(),
        "loop": loop,
    }
    leaked.set("set-by-an-earlier-request")
    return report


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def traced_stack(
    middleware: Callable[[WSGIApp], WSGIApp] | None = None,
) -> tuple[Any, Any, InMemorySpanExporter]:
    """``(wsgi_app, fastapi_app, exporter)``: ``OpenTelemetryMiddleware(ASGIToWSGI(api))``
    with ``api`` instrumented, both on one SDK provider exporting to memory;
    ``middleware``, if given, wraps the ``ASGIToWSGI`` inside OpenTelemetry's."""
    provider, exporter = _provider()
    api = FastAPI()

    @api.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @api.get("/context")
    async def context() -> dict[str, Any]:
        return seen()

    @api.get("/spans")
    async def spans() -> list[dict[str, Any]]:
        return [span_record(span) for span in exporter.get_finished_spans()]

    FastAPIInstrumentor.instrument_app(
        api, tracer_provider=provider, exclude_spans=["receive", "send"]
    )
    inner: WSGIApp = ASGIToWSGI(api)
    if middleware is not None:
        inner = middleware(inner)
    wsgi = OpenTelemetryMiddleware(inner, tracer_provider=provider)
    return wsgi, api, exporter


def native_traced_stack() -> tuple[Any, InMemorySpanExporter]:
    """The native WSGI reference: a plain WSGI app with ``/context`` and ``/spans`` under
    ``OpenTelemetryMiddleware(setting(...))``."""
    provider, exporter = _provider()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/context":
            payload: Any = seen()
        elif path == "/spans":
            payload = [span_record(span) for span in exporter.get_finished_spans()]
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(payload).encode()]

    return OpenTelemetryMiddleware(setting(app), tracer_provider=provider), exporter


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """What a test compares: the span's name, kind, ids and its parent's span id."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": context.trace_id,
        "span_id": context.span_id,
        "parent": span.parent.span_id if span.parent is not None else None,
        "target": (span.attributes or {}).get("http.target")
        or (span.attributes or {}).get("url.path"),
    }


traced, traced_api, _traced_exporter = traced_stack(setting)
traced_native, _native_exporter = native_traced_stack()
