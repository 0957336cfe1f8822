"""The documentation builds with ``mkdocs build --strict``: a broken link fails the check.

mkdocs and mkdocstrings (the API reference page) come with the ``dev`` extra, which
scripts/check.sh installs; a venv with the ``test`` extra only skips this test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "index",
    "wsgi-to-asgi",
    "asgi-to-wsgi",
    "deployment",
    "django-migration",
    "conformance",
    "checklist",
    "api",
    "benchmarks",
]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the dev extra is not installed")
    pytest.importorskip("mkdocstrings", reason="the dev extra is not installed")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in PAGES:
        built = site / "index.html" if page == "index" else site / page / "index.html"
        assert built.is_file(), f"{page}.md was not built"
