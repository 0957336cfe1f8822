"""The README demo runs: it serves the examples on real servers and its requests succeed."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def example_temp_dirs() -> set[Path]:
    """The temporary directories the examples make for their databases."""
    return set(Path(tempfile.gettempdir()).glob("bridgeway-*-example-*"))


@pytest.mark.servers
def test_demo_requests_succeed() -> None:
    before = example_temp_dirs()
    result = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--port", "0", "--exit-after-requests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, f"{output}\n--- stderr ---\n{result.stderr}"
    assert "FAILED" not in output
    # The servers' own log lines go to their log files, not between the tours.
    for server_line in ("Uvicorn running on", "Serving on http", "Booting worker", "INFO:"):
        assert server_line not in output + result.stderr
    assert output.count("(server log: ") == 4
    assert "Flask (WSGI) served by uvicorn (ASGI) through bridgeway.WSGIToASGI" in output
    assert "GET /legacy/hello/World -> 200 'Hello, World!'" in output
    assert "POST /legacy/greet -> 200 'Nice to meet you, Ada!'" in output
    assert 'GET /api/square/12 -> 200 {"n":12,"square":144}' in output
    assert "1001 lines, streamed (chunked)" in output
    # FastAPI on waitress through ASGIToWSGI
    assert "FastAPI (ASGI) served by waitress (WSGI) through bridgeway.ASGIToWSGI" in output
    assert "POST /notes      -> 201" in output
    assert "POST /notes      -> 422 ['body', 'title']" in output
    assert "5 lines produced over" in output
    assert "the BackgroundTask wrote its row after the response had gone out" in output
    # Django with FastAPI taking over /api, on uvicorn
    assert "Django (WSGI) + new FastAPI endpoints under /api" in output
    assert "GET /            -> 200 'Notes, served by Django', 3 notes" in output
    assert "GET /api/notes   -> 200 4 notes as JSON" in output
    assert "GET /admin/login/ -> 200 'Log in | Django site admin'" in output
    assert "GET /debug/connections/ -> 0 database files open" in output
    # Flask with an MCP server at /mcp, on gunicorn gthread: the MCP SDK's client
    assert "Flask (WSGI) + an MCP server (ASGI) at /mcp, served by gunicorn gthread" in output
    assert "MCP initialize   -> protocol 2025-11-25, tools ['add', 'list_todos'," in output
    assert "call add x2      -> GET /todos (a Flask view) lists 2 items" in output
    assert "call review      -> 2 progress notifications, streamed" in output
    assert "call server_info x4 at once -> one event loop, one MCP lifespan" in output
    assert "All demo requests succeeded on 4 server(s)." in output
    # Every server was stopped so that it ran its exit: the examples' databases are gone.
    assert example_temp_dirs() - before == set()
