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
    for check in (
        "hello, sequential: bridgeway/thread round trip = ",
        "hello, 64 concurrent: bridgeway/uvicorn-wsgi = ",
        "hello, 64 concurrent: bridgeway/a2wsgi = ",
        "flask, sequential: bridgeway/a2wsgi = ",
        "flask, sequential: bridgeway/uvicorn-wsgi = ",
        "flask, 64 concurrent: bridgeway/a2wsgi = ",
        "flask, 64 concurrent: bridgeway/uvicorn-wsgi = ",
        "flask, sequential: bridgeway, close_after_send=True/bridgeway (informational) = ",
    ):
        assert any(check in line for line in lines), (check, lines)
    for direction in ("upload", "download"):
        assert any(line.startswith(f"ratio {direction} ") for line in lines), lines
    checks = check_lines(output)
    for direction in SLOW:
        assert any(line.startswith(f"check {direction} ") for line in checks), checks
    assert "starlette-wsgi" in output


@pytest.mark.bench
def test_a2w_bench_runs() -> None:
    output = run_quick("bench.a2w_inprocess")
    lines = ratio_lines(output)
    for check in (
        "hello, 1 thread: bridgeway/a2wsgi = ",
        "fastapi, 1 thread: bridgeway/floor = ",
        "fastapi, 8 threads: bridgeway/floor = ",
        "bridgeway/cross-thread round trip (informational) = ",
        "fastapi, 8 threads: uvloop/asyncio (informational) = ",
    ):
        assert any(check in line for line in lines), (check, lines)
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
        (flask, "gunicorn-native"),
        ("Flask under uvicorn, p99 latency", "uvicorn-wsgi"),
        (fastapi, "floor"),
        (fastapi, "a2wsgi"),
    ):
        assert any(f"{section}: bridgeway/{peer} = " in line for line in lines), lines
    assert "   starlette-wsgi " in output  # its row, Flask under uvicorn
    assert any(f"{fastapi}: uvloop/asyncio (informational) = " in line for line in lines), lines
