"""Smoke test of the benchmark scripts: each runs with --quick and prints its ratios.

Wall-clock figures are never asserted (they depend on the machine); only that each script
completes and reports every comparison.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_quick(module: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", module, "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def ratio_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("ratio ")]


def check_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("check ")]


SLOW = ("upload, slow consumer", "download, slow consumer")


@pytest.mark.bench
def test_w2a_bench_runs() -> None:
    output = run_quick("bench.w2a_inprocess")
    lines = ratio_lines(output)
    for section in ("hello, sequential", "hello, 64 concurrent", "flask, sequential"):
        assert any(f"{section}: bridgeway/a2wsgi = " in line for line in lines), lines
        assert any(f"{section}: bridgeway/uvicorn-wsgi = " in line for line in lines), lines
    assert any("hello, sequential: thread round trip/uvicorn-wsgi" in line for line in lines)
    for direction in ("upload", "download"):
        assert any(line.startswith(f"ratio {direction} ") for line in lines), lines
    checks = check_lines(output)
    for direction in SLOW:
        assert any(line.startswith(f"check {direction} ") for line in checks), checks
    assert "starlette-wsgi" in output
    closed = "flask, iterable closed by the app, sequential: bridgeway/uvicorn-wsgi (informational)"
    assert any(closed in line for line in lines), lines


@pytest.mark.bench
def test_a2w_bench_runs() -> None:
    output = run_quick("bench.a2w_inprocess")
    lines = ratio_lines(output)
    for section in ("hello, 1 thread", "hello, 8 threads", "fastapi, 1 thread"):
        assert any(f"{section}: bridgeway/a2wsgi = " in line for line in lines), lines
    assert any("bridgeway/cross-thread round trip = " in line for line in lines), lines
    for direction in ("upload", "download"):
        assert any(line.startswith(f"ratio {direction} ") for line in lines), lines
    checks = check_lines(output)
    for direction in SLOW:
        assert any(line.startswith(f"check {direction} ") for line in checks), checks


@pytest.mark.bench
@pytest.mark.servers
def test_e2e_bench_runs() -> None:
    """Real servers on loopback under wrk, one short round each; every server is stopped.
    scripts/check.sh installs wrk (Debian's package) when it is missing."""
    assert shutil.which("wrk") is not None, "wrk is missing: run scripts/check.sh"
    output = run_quick("bench.e2e")
    lines = ratio_lines(output)
    flask = "Flask under uvicorn, requests/s"
    fastapi = "FastAPI under gunicorn gthread, requests/s"
    for section, peer in (
        (flask, "a2wsgi"),
        (flask, "uvicorn-wsgi"),
        (fastapi, "a2wsgi"),
        (fastapi, "raw-wsgi"),
    ):
        assert any(f"{section}: bridgeway/{peer} = " in line for line in lines), lines
    assert "   starlette-wsgi " in output  # its row, Flask under uvicorn
    assert any("iterable closed by the app (informational) = " in line for line in lines), lines
