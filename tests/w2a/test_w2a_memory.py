"""Memory stays flat for huge bodies (W2A-INPUT-06,
W2A-RESP-10). Each case runs in a fresh interpreter so peak RSS means this case only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.servers  # 1 GiB through a child interpreter: not the fast lane

ROOT = Path(__file__).resolve().parents[2]  # the child imports tests.support from here
LIMIT_MIB = 32


def probe(mode: str, backend: str, mib: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.w2a.w2a_memory", mode, backend, str(mib)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(
    "mode",
    [
        pytest.param("upload", id="W2A-INPUT-06-1GiB-upload"),
        pytest.param("download", id="W2A-RESP-10-1GiB-slow-download"),
    ],
)
def test_one_gib_streams_in_flat_memory(mode: str, backend: str) -> None:
    result = probe(mode, backend, 1024)
    assert result["bytes"] == 2**30
    assert result["growth_mib"] < LIMIT_MIB, result
    assert result["seconds"] < 20, result


def test_probe_sees_held_memory() -> None:
    """Control: a consumer that keeps 128 MiB makes the probe report it, so the flat
    figures above are not an artefact of the measurement."""
    result = probe("control", "asyncio", 128)
    assert result["bytes"] == 128 * 2**20
    assert result["growth_mib"] > 2 * LIMIT_MIB, result
