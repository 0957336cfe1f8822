"""The registry of other projects' bugs (tests/support/known_bugs.py): every entry is tied to an
installed project's versions, and an expected failure left in place after that project
fixed the bug fails the run with a message naming the installed version."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from tests.support.known_bugs import ALL, KnownBug, installed_version

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[1]  # the inner test imports tests.support from here
PYTEST = installed_version("pytest")


@pytest.mark.parametrize("bug", ALL, ids=lambda bug: f"{bug.project}:{bug.text[:30]}")
def test_every_known_bug_is_tied_to_an_installed_project(bug: KnownBug) -> None:
    version = installed_version(bug.project)  # raises if the project is not installed
    SpecifierSet(bug.affected)  # raises on a malformed range
    assert str(version) in bug.reason


def _inner(pytester: pytest.Pytester, affected: str, body: str) -> pytest.RunResult:
    pytester.syspathinsert(ROOT)
    pytester.makepyfile(
        f"""
        import pytest
        from tests.support.known_bugs import KnownBug

        BUG = KnownBug("pytest", {affected!r}, "a bug of pytest's, for this test")

        @pytest.mark.parametrize("x", [pytest.param(1, marks=BUG.marks())])
        def test_shows_the_bug(x):
            {body}
        """
    )
    return pytester.runpytest("-p", "no:cacheprovider")


def test_a_bug_fixed_upstream_fails_the_run_naming_the_version(
    pytester: pytest.Pytester,
) -> None:
    """The installed version is in ``affected`` but the test passes: the strict xfail
    turns it into a failure whose message names the project and its version."""
    result = _inner(pytester, f">={PYTEST}", "assert True")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*XPASS(strict)*pytest {PYTEST}: a bug of pytest's*"])
    result.stdout.fnmatch_lines([f"*pytest {PYTEST} has fixed it*tests/support/known_bugs.py*"])


def test_a_bug_still_present_is_an_expected_failure(pytester: pytest.Pytester) -> None:
    result = _inner(pytester, f"=={PYTEST}", "assert False")
    result.assert_outcomes(xfailed=1)


def test_outside_its_versions_a_bug_is_not_expected(pytester: pytest.Pytester) -> None:
    """A version outside ``affected`` (a fixed one) is held to the normal expectation:
    the test runs unmarked and its failure is a failure."""
    assert not KnownBug("pytest", f"<{PYTEST}", "").applies()
    _inner(pytester, f"<{PYTEST}", "assert True").assert_outcomes(passed=1)
    _inner(pytester, f"<{PYTEST}", "assert False").assert_outcomes(failed=1)
