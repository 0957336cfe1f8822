"""Issue 13 point 3 (A2W-LIFE-09) on real WSGI servers: ASGIToWSGI runs each request in a
copy of the calling WSGI thread's context, so what WSGI middleware set is seen by the
ASGI app, and nothing one request's app sets is seen by the next.

Native references, on the same server: a plain WSGI app under the same two middlewares
(OpenTelemetry's WSGI middleware and ``setting``, which sets a ``ContextVar``) sees the
WSGI span as current and the variable's value; and, for isolation, the same FastAPI app
natively under uvicorn, where each request is a task in a fresh copy of the context.
The in-process proof is ``tests/a2w/test_a2w_context.py``; apps: ``tests/live/lifecycle_apps.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from tests.live.rawclient import exchange, request_bytes
from tests.live.servers import SERVERS, WSGI_SERVERS, ServerProcess, ServerSpec, running_server

pytestmark = pytest.mark.servers

BRIDGED = "tests.live.lifecycle_apps:traced"  # OpenTelemetry(setting(ASGIToWSGI(FastAPI)))
NATIVE_WSGI = "tests.live.lifecycle_apps:traced_native"  # OpenTelemetry(setting(WSGI app))
NATIVE_ASGI = "tests.live.lifecycle_apps:traced_api"  # the FastAPI app alone, for uvicorn
SERVER_NAMES = ["gunicorn-gthread", "waitress"]
MIDDLEWARE_VALUE = "from-wsgi-middleware"  # what lifecycle_apps.setting sets


def one_thread(spec: ServerSpec) -> ServerSpec:
    """gunicorn gthread with ``--threads 1``: every request on one thread (and one loop)."""
    base = spec.argv

    def argv(app: str, port: int) -> list[str]:
        words = base(app, port)
        words[words.index("--threads") + 1] = "1"
        return words

    return replace(spec, name=f"{spec.name}-1", argv=argv)


def get_json(port: int, target: str) -> Any:
    response = exchange(port, request_bytes("GET", target), timeout=10.0)
    assert response.status == 200, response
    return json.loads(response.body)


def finished_span(port: int, span_id: int, timeout: float = 5.0) -> dict[str, Any]:
    """The finished span ``span_id`` from the app's ``/spans``. A span ends when the app
    returns or the server closes the response, which may be just after the client read
    it, so this polls, with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        spans = {span["span_id"]: span for span in get_json(port, "/spans")}
        if span_id in spans:
            span: dict[str, Any] = spans[span_id]
            return span
        if time.monotonic() > deadline:
            raise AssertionError(f"span {span_id:x} not finished after {timeout}s: {spans}")
        time.sleep(0.02)  # polling interval, bounded by the deadline


@pytest.fixture(scope="module", params=SERVER_NAMES)
def served(request: pytest.FixtureRequest) -> Iterator[dict[str, ServerProcess]]:
    """One server with the bridged app, one with the native WSGI reference."""
    spec = WSGI_SERVERS[request.param]
    with running_server(spec, BRIDGED) as bridged, running_server(spec, NATIVE_WSGI) as native:
        yield {"bridged": bridged, "native": native}


def test_native_wsgi_app_sees_the_wsgi_span_and_the_middleware_value(
    served: dict[str, ServerProcess],
) -> None:
    port = served["native"].port
    seen = get_json(port, "/context")
    assert seen["request_var"] == MIDDLEWARE_VALUE
    # The app's current span is OpenTelemetry's WSGI server span, the trace's root.
    span = finished_span(port, seen["span_id"])
    assert (span["kind"], span["parent"]) == ("SERVER", None)
    assert span["trace_id"] == seen["trace_id"] != 0


def test_fastapi_span_is_a_child_of_the_wsgi_span_and_sees_the_middleware_value(
    served: dict[str, ServerProcess],
) -> None:
    port = served["bridged"].port
    seen = get_json(port, "/context")
    assert seen["request_var"] == MIDDLEWARE_VALUE  # as the native WSGI app sees it
    # The app's current span is FastAPI's; its parent is the WSGI server span, which
    # is the root as in the native reference; one trace.
    inner = finished_span(port, seen["span_id"])
    assert (inner["name"], inner["trace_id"]) == ("GET /context", seen["trace_id"])
    assert inner["parent"] is not None, inner
    outer = finished_span(port, inner["parent"])
    assert (outer["kind"], outer["parent"]) == ("SERVER", None)
    assert outer["trace_id"] == inner["trace_id"] != 0


@pytest.mark.parametrize(
    ("spec", "app"),
    [
        (SERVERS["uvicorn-h11"], NATIVE_ASGI),  # the native reference
        (one_thread(WSGI_SERVERS["gunicorn-gthread"]), BRIDGED),
    ],
    ids=["uvicorn-native", "gunicorn-gthread-threads-1"],
)
def test_a_value_the_app_set_is_not_seen_by_the_next_request_on_the_same_thread(
    spec: ServerSpec, app: str
) -> None:
    with running_server(spec, app) as server:
        first = get_json(server.port, "/context")
        second = get_json(server.port, "/context")
    # Same thread and same loop: the second request would see the first one's value
    # if requests shared a context.
    assert (second["thread"], second["loop"]) == (first["thread"], first["loop"])
    assert second["loop"] is not None
    assert first["leaked"] == second["leaked"] == "default"
