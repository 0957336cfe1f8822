"""The live-server harness itself: every server in the table starts, answers and stops;
a server that cannot start fails fast with its log; the raw client parses what it must."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psutil
import pytest

from tests.live.rawclient import RawConnection, exchange, request_bytes
from tests.live.servers import (
    WSGI_SERVERS,
    ServerFailed,
    ServerProcess,
    running_server,
)
from tests.support.fleet import running_fleet

pytestmark = pytest.mark.servers

NATIVE_PROBE = "tests.live.apps:wsgi_probe"


@pytest.fixture(scope="module")
def wsgi_fleet() -> Iterator[dict[str, ServerProcess]]:
    """Every WSGI server of the table hosting the plain WSGI probe, started in parallel."""
    with running_fleet([(spec, NATIVE_PROBE) for spec in WSGI_SERVERS.values()]) as fleet:
        yield fleet


@pytest.mark.parametrize("server_name", list(WSGI_SERVERS))
def test_wsgi_server_serves_the_probe(
    wsgi_fleet: dict[str, ServerProcess], server_name: str
) -> None:
    response = exchange(wsgi_fleet[server_name].port, request_bytes("GET", "/a%20b?x=1"))
    assert response.status == 200
    environ = json.loads(response.body)
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"], environ["QUERY_STRING"]) == (
        "",
        "/a b",
        "x=1",
    )


def test_pipelined_responses_and_head(wsgi_fleet: dict[str, ServerProcess]) -> None:
    with RawConnection(wsgi_fleet["gunicorn-gthread"].port, timeout=5.0) as conn:
        conn.send(request_bytes("HEAD", "/one") + request_bytes("GET", "/two"))
        head = conn.read_response("HEAD")
        assert head.status == 200
        assert head.body == b""
        assert head.complete
        second = conn.read_response()
        assert json.loads(second.body)["PATH_INFO"] == "/two"


def test_a_server_that_cannot_start_fails_fast_with_its_log() -> None:
    with (
        pytest.raises(ServerFailed, match="exited with code") as failure,
        running_server("uvicorn-h11", "tests.live.apps:no_such_app", startup_timeout=20),
    ):
        pass
    assert "no_such_app" in str(failure.value)  # the server's own log is in the message


def test_stop_ends_the_whole_process_group() -> None:
    with running_server("gunicorn-sync", NATIVE_PROBE) as server:
        master = psutil.Process(server.pid)
        children = master.children(recursive=True)
        assert children  # gunicorn's worker
    _gone, alive = psutil.wait_procs([master, *children], timeout=5)
    assert not alive, f"still running after stop(): {alive}"
