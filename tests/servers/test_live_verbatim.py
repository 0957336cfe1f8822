"""The live verbatim round trip under real WSGI servers: the same WSGI app served natively
and as ``ASGIToWSGI(WSGIToASGI(app))`` (``tests/live/verbatim_apps``). A ``str`` body
chunk is the server's to judge (PEP 3333 asks for bytes; gunicorn and wsgiref refuse
it, each in its own way): through the round trip the server gets the very ``str``, so
the client gets what it gets natively. Before, WSGIToASGI refused the ``str`` itself
and the server got a TypeError from ASGIToWSGI's call: gunicorn, which natively sends
its headers and then fails writing the ``str`` (the client reads a 200 and no body),
answered its 500 page instead (fails so at 9a45ade). wsgiref happens to answer alike
both ways (its checks come before the headers)."""

from __future__ import annotations

import http.client

import pytest

from tests.live.servers import HOST, running_server

pytestmark = pytest.mark.servers

APPS = {"native": "tests.live.verbatim_apps:app", "round-trip": "tests.live.verbatim_apps:bridged"}


def outcome(port: int, path: str) -> tuple[object, ...]:
    """The status and body the client read, or the kind of failure it saw."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        try:
            return response.status, response.read()
        except http.client.IncompleteRead as exc:
            return response.status, "incomplete", exc.partial
    except (OSError, http.client.HTTPException) as exc:
        return ("failed", type(exc).__name__)
    finally:
        conn.close()


@pytest.mark.parametrize("server_name", ["gunicorn-sync", "wsgiref"])
def test_a_str_chunk_is_judged_by_the_server_as_natively(server_name: str) -> None:
    seen = {}
    for way, app in APPS.items():
        with running_server(server_name, app, ready_path="/ready") as server:
            seen[way] = [outcome(server.port, path) for path in ("/str", "/str-later", "/")]
    assert seen["round-trip"] == seen["native"]
    assert seen["native"][2] == (200, b"ready")
