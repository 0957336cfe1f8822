"""docs/checklist.md defines every behaviour ID that the package and the tests cite."""

from __future__ import annotations

import pytest

from tests.support.checklist_ids import (
    UNCOVERED,
    ad_hoc_references,
    cited_abbreviations,
    cited_ids,
    defined_abbreviations,
    defined_ids,
    uncovered_ids,
)


def test_the_checklist_defines_its_families() -> None:
    defined = defined_ids()
    families = {name.rsplit("-", 1)[0] for name in defined}
    assert families == {
        "W2A-ENV",
        "W2A-INPUT",
        "W2A-RESP",
        "W2A-SCOPE",
        "A2W-SCOPE",
        "A2W-RECV",
        "A2W-SEND",
        "A2W-LIFE",
        "EXT",
        "HTTP",
    }
    assert len(defined) == 129


def test_every_cited_id_is_defined() -> None:
    undefined = {
        name: where
        for name, where in cited_ids("bridgeway", "tests").items()
        if name not in defined_ids()
    }
    assert not undefined, f"cited but not defined in docs/checklist.md: {undefined}"


def test_the_docs_examples_and_scripts_cite_only_defined_ids() -> None:
    folders = ("docs", "examples", "bench", "scripts", "README.md", "CONTRIBUTING.md")
    undefined = {
        name: where for name, where in cited_ids(*folders).items() if name not in defined_ids()
    }
    assert not undefined, f"cited but not defined in docs/checklist.md: {undefined}"


def test_every_cited_spec_abbreviation_is_defined() -> None:
    undefined = {
        name: where
        for name, where in cited_abbreviations("bridgeway", "tests").items()
        if name not in defined_abbreviations()
    }
    assert not undefined, f"not defined in docs/checklist.md's sources: {undefined}"


def test_no_reference_only_the_tracker_can_resolve() -> None:
    found = ad_hoc_references("bridgeway", "tests")
    assert not found, f"cite a checklist ID or say it in words: {found}"


def test_uncovered_items_are_reported(request: pytest.FixtureRequest) -> None:
    # Not a failure: conftest.py prints these in pytest's summary.
    request.config.stash[UNCOVERED] = uncovered_ids()
