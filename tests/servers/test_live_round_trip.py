"""The in-process round trip under real servers: the same Starlette app served by
uvicorn (asyncio) and hypercorn (trio) natively and as ``WSGIToASGI(ASGIToWSGI(app))``
(``tests/live/round_trip_apps``).
The server's lifespan reaches the app at start and at stop, its state reaches the
requests (made on the loop that serves them), and a websocket echoes. Before the round
trip forwarded lifespan and websocket, the bridged app ran its lifespan lazily on a loop
of its own (never at server start, never at stop) and every websocket was refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.live.servers import running_server

pytestmark = pytest.mark.servers

APPS = {
    "native": "tests.live.round_trip_apps:app",
    "round-trip": "tests.live.round_trip_apps:bridged",
}


@pytest.mark.parametrize("server_name", ["uvicorn-h11", "hypercorn-trio"])
@pytest.mark.parametrize("way", list(APPS))
def test_lifespan_state_and_websocket(way: str, server_name: str, tmp_path: Path) -> None:
    env = {"BRIDGEWAY_MARKERS": str(tmp_path)}
    with running_server(server_name, APPS[way], env=env, ready_path="/state") as server:
        assert (tmp_path / "startup").exists()
        with urllib.request.urlopen(server.url("/state"), timeout=10) as response:
            assert json.loads(response.read()) == {"answer": 42, "same_loop": True}
        with connect(f"ws://127.0.0.1:{server.port}/echo", open_timeout=10) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "echo hi"
            ws.send("again")
            assert ws.recv(timeout=10) == "echo again"
        assert not (tmp_path / "shutdown").exists()
    assert (tmp_path / "shutdown").exists()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize("way", ["judged", "judged_bridged"])
def test_uvicorn_judges_a_broken_response_itself(way: str) -> None:
    """An app that sent nothing, or trailers before its start: natively uvicorn answers
    its own 500 and logs why (its send() raises RuntimeError for the trailers, which
    leaves the app); a bare round trip passes both on, so uvicorn does the same. Before,
    ASGIToWSGI answered the 500 itself and raised its ProtocolError in the app."""
    with running_server("uvicorn-h11", f"tests.live.round_trip_apps:{way}") as server:
        assert _get(server.url("/silent")) == (500, b"Internal Server Error")
        assert _get(server.url("/early-trailers")) == (500, b"Internal Server Error")
        log = server.log()
    assert "ASGI callable returned without starting response." in log
    assert "RuntimeError: Expected ASGI message 'http.response.start'" in log
    assert "ProtocolError" not in log
