"""The host launcher's own logic, without starting a host: who can read the code that
Apache's daemons import, and the readable copy made when they cannot."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import hosts


@pytest.fixture
def base() -> Iterator[Path]:
    # Not tmp_path: /tmp/pytest-of-root is 0700, so nothing below it is readable by others.
    path = hosts.run_directory("test")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _tree(root: Path) -> Path:
    for package in ("bridgeway", "tests/conformance", "examples"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("# code\n")
    return root


def test_readable_by_follows_every_directory_above(base: Path) -> None:
    repo = _tree(base / "repo")
    target = repo / "bridgeway" / "__init__.py"
    assert hosts.readable_by(target, hosts.APACHE_USER)
    assert hosts.readable_by(repo, hosts.APACHE_USER)
    repo.chmod(0o700)  # what pyenv's /root and pytest's tmp_path are
    assert not hosts.readable_by(target, hosts.APACHE_USER)
    assert hosts.readable_by(target, "root")  # root reads everything
    repo.chmod(0o755)
    target.chmod(0o600)
    assert not hosts.readable_by(target, hosts.APACHE_USER)


def test_unreadable_code_is_copied_where_apaches_user_reads_it(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _tree(base / "repo")
    monkeypatch.setattr(hosts, "ROOT", repo)
    run = base / "run"
    run.mkdir()
    assert hosts.code_root_for(hosts.APACHE_USER, run) == repo  # readable: no copy
    repo.chmod(0o700)
    try:
        code = hosts.code_root_for(hosts.APACHE_USER, run)
    finally:
        repo.chmod(0o755)
    assert code == run / "code"
    for package in ("bridgeway", "tests/conformance", "examples"):
        copied = code / package / "__init__.py"
        assert copied.read_text() == "# code\n"
        assert hosts.readable_by(copied, hosts.APACHE_USER)
        assert stat.S_IMODE(copied.stat().st_mode) & stat.S_IROTH
