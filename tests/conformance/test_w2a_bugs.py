"""Reproductions of bridgeway (WSGIToASGI) bugs found by the conformance suite, through
real servers. They fail until the bug is fixed and then stay as regressions.

1. HEAD (or 204/304) plus more than one ``write()``: the first non-empty ``write()``
   completes the response (the body is dropped, HTTP-03), and the second one raises
   ``ProtocolError("write() was called after the response was complete")`` inside the
   app, which escapes as "Exception in ASGI application" and breaks the connection.
   PEP 3333 lets the adapter drop the body of a HEAD response, not fail the app for it.
2. ``start_response("200", ...)`` (no reason phrase, no space) is accepted; PEP 3333
   §The start_response() Callable requires "a Status-Code and a Reason-Phrase, in that
   order and separated by a single space" (``wsgiref.validate`` asserts
   ``status[3] == " "``), the checklist's W2A-RESP-01 requires ``NNN reason``, and
   bridgeway's own error message says so ("three digits, a space and a reason phrase").
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.live.rawclient import RawConnection, exchange, request_bytes
from tests.live.servers import ASGI_SERVERS, ServerProcess, running_servers

pytestmark = pytest.mark.servers

APP = "tests.conformance.w2a_probe:app"
NAMES = ["uvicorn-h11", "hypercorn-asyncio"]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ServerProcess]]:
    with running_servers([(ASGI_SERVERS[name], APP) for name in NAMES]) as started:
        yield {server.spec.name: server for server in started}


@pytest.mark.parametrize(
    ("server_name", "method", "status"),
    [
        pytest.param(name, method, status, id=f"HTTP-03+W2A-RESP-09:{method}-{status}:{name}")
        for name in NAMES
        for method, status in (("HEAD", "200+OK"), ("GET", "204+No+Content"))
    ],
)
def test_write_twice_without_a_body(
    servers: dict[str, ServerProcess], server_name: str, method: str, status: str
) -> None:
    server = servers[server_name]
    log_before = len(server.log())
    with RawConnection(server.port, timeout=5.0) as conn:
        conn.send(request_bytes(method, f"/__write?s={status}"))
        response = conn.read_response(method)
        assert (response.status, response.body, response.complete) == (int(status[:3]), b"", True)
        conn.send(request_bytes("GET", "/after"))
        after = conn.read_response()
        assert json.loads(after.body)["environ"]["PATH_INFO"][1] == "/after"
    assert "write() was called after the response was complete" not in server.log()[log_before:]


@pytest.mark.parametrize("server_name", [pytest.param(n, id=f"W2A-RESP-01:{n}") for n in NAMES])
def test_status_without_reason_phrase_is_refused(
    servers: dict[str, ServerProcess], server_name: str
) -> None:
    response = exchange(servers[server_name].port, request_bytes("GET", "/__status?catch=1&s=200"))
    assert json.loads(response.body) == {"raised": "ValueError"}
