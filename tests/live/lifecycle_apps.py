"""Probe apps for the lifecycle fidelity tests (``tests/test_live_a2w_lifecycle.py``):
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
- ``traced``: ``OpenTelemetryMiddleware(ASGIToWSGI(fastapi))`` with the FastAPI app
  instrumented and the SDK's in-memory exporter; ``/hello`` answers, ``/spans`` returns
  the finished spans.
"""

from __future__ import annotations

import asyncio
import gc
import types
import weakref
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bridgeway import ASGIToWSGI

from .a2w_apps import marker

Scope = dict[str, Any]
Receive = Any
Send = Any

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


def traced_stack() -> tuple[Any, Any, InMemorySpanExporter]:
    """``(wsgi_app, fastapi_app, exporter)``: ``OpenTelemetryMiddleware(ASGIToWSGI(api))``
    with ``api`` instrumented, both on one SDK provider exporting to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    api = FastAPI()

    @api.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @api.get("/spans")
    async def spans() -> list[dict[str, Any]]:
        return [span_record(span) for span in exporter.get_finished_spans()]

    FastAPIInstrumentor.instrument_app(
        api, tracer_provider=provider, exclude_spans=["receive", "send"]
    )
    wsgi = OpenTelemetryMiddleware(ASGIToWSGI(api), tracer_provider=provider)
    return wsgi, api, exporter


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


traced, _traced_api, _traced_exporter = traced_stack()
