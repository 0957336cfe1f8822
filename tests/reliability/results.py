"""Figures of the reliability tests: each test records a JSON document under
``$BRIDGEWAY_RELIABILITY_RESULTS`` (set by ``python -m tests.reliability.report``); without
that variable ``record()`` does nothing, so a plain pytest run writes no files."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

RESULTS_ENV = "BRIDGEWAY_RELIABILITY_RESULTS"
_lock = threading.Lock()


def results_dir() -> Path | None:
    folder = os.environ.get(RESULTS_ENV)
    return Path(folder) if folder else None


def record(kind: str, name: str, data: dict[str, Any]) -> None:
    """Write ``data`` as ``<kind>--<name>.json`` (``kind``: storm, property, hostile, ...)."""
    folder = results_dir()
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    with _lock:
        (folder / f"{kind}--{safe}.json").write_text(
            json.dumps({"kind": kind, "name": name, **data}, indent=1, sort_keys=True)
        )


class Outcomes:
    """Collects ``(input, outcome)`` rows of one test and records them at the end."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        self.rows: list[dict[str, Any]] = []

    def add(self, where: str, tried: str, outcome: str, **extra: Any) -> None:
        self.rows.append({"where": where, "input": tried, "outcome": outcome, **extra})

    def save(self, **extra: Any) -> None:
        record(self.kind, self.name, {"rows": self.rows, **extra})
