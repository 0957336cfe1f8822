"""ASGIToWSGI called from greenlets in a monkeypatched process (issue 15 point 2), without
a server: ``tests/a2w/a2w_greenlet_child.py`` runs in a child interpreter per case (patching
cannot be undone) and calls two adapters from 10 greenlets at once. The real servers
(gunicorn gevent/eventlet, uWSGI --gevent) are in ``test_live_a2w_greenlet.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.servers  # each case monkeypatches a child interpreter: not the fast lane

CHILD = Path(__file__).with_name("a2w_greenlet_child.py")
SLEEP = 0.2  # what each request awaits

# (library, variant, the one error the first request logs, or None)
CASES = [
    ("gevent", "plain", None),
    ("eventlet", "plain", None),
    ("gevent", "uvloop", "runs asyncio's SelectorEventLoop instead"),
    ("eventlet", "uvloop", "runs asyncio's SelectorEventLoop instead"),
    ("gevent", "no-select", "polls it instead"),
    ("eventlet", "no-select", "polls it instead"),
    ("gevent", "no-thread", "runs one request's event loop at a time"),
]


def run_child(library: str, variant: str) -> tuple[dict[str, Any], list[str], str]:
    done = subprocess.run(
        [sys.executable, str(CHILD), library, variant],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    return json.loads(first), rest, done.stderr


@pytest.mark.parametrize(
    ("library", "variant", "error"), CASES, ids=[f"{lib}-{variant}" for lib, variant, _ in CASES]
)
def test_greenlets_share_one_loop(library: str, variant: str, error: str | None) -> None:
    result, exit_lines, stderr = run_child(library, variant)
    assert result["statuses"] == ["200 OK"] * 10
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR")]
    for bad in ("Traceback", "another loop is running", "Task was destroyed", "never awaited"):
        assert bad not in stderr, stderr
    # Lifespan startup once per adapter, shutdown at exit.
    assert sorted(name for name, _ in result["startups"]) == ["inline", "thread"]
    assert sorted(exit_lines) == ["shutdown inline", "shutdown thread"]
    if variant == "no-thread":
        # One loop per adapter, requests in turns: no overlap, but every one served.
        assert result["seconds"] >= 10 * SLEEP * 0.9
        assert len(result["request_loops"]) == 2
    else:
        # The 10 requests overlap, on the process's one loop, which both lifespans share.
        assert result["seconds"] < 5 * SLEEP, result
        assert len(result["request_loops"]) == 1
        assert {loop for _, loop in result["startups"]} == set(result["request_loops"])
    if error is None:
        assert errors == [], stderr
    else:
        assert len(errors) == 1, stderr  # once per process, at the first request
        assert error in errors[0]
