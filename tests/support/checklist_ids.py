"""Which behaviour-checklist IDs ``docs/checklist.md`` defines and which the code cites.

Used by ``test_checklist.py`` (an undefined ID fails) and by ``conftest.py`` (the items no
test cites are listed in pytest's summary: a report, not a failure, since a warning would
be an error under ``filterwarnings = error``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKLIST = ROOT / "docs" / "checklist.md"
# Where test_checklist.py leaves the uncovered items for conftest.py's summary.
UNCOVERED = pytest.StashKey[list[str]]()

# A definition is the bold ID that opens an item: ``**W2A-ENV-01**``.
_DEFINED = re.compile(r"\*\*((?:W2A|A2W)-[A-Z]+-\d{2}|(?:EXT|HTTP)-\d{2})\*\*")
# A citation: the checklist's families, and any other three-part ``XXX-YYY-N`` so that a
# new family or a mistyped one (a number without its leading zero) is caught too.
_CITED = re.compile(r"\b(?:[A-Z][A-Z0-9]*-[A-Z]+-\d+|(?:EXT|HTTP)-\d+)\b")
# The specifications' short names (``ASGI-www §Request``) that the checklist defines.
_ABBREVIATION = re.compile(r"\bASGI-[a-z]+\b")
_NOT_ABBREVIATIONS = {"ASGI-legal"}  # English: "ASGI-legal types"
# References that nobody outside the project's tracker can look up.
_AD_HOC = re.compile(
    r"\bissue\s+\d+,?\s+acceptance\b|\bacceptance\s+\d+:|\([MP]\d\b|\bthe [MP]\d bug\b"
)


def defined_ids() -> set[str]:
    return set(_DEFINED.findall(CHECKLIST.read_text(encoding="utf-8")))


def defined_abbreviations() -> set[str]:
    return set(_ABBREVIATION.findall(CHECKLIST.read_text(encoding="utf-8")))


def sources(*folders: str) -> Iterable[Path]:
    """The Python and Markdown files under ``folders`` (or the file itself), but never
    the checklist, whose items would cite themselves."""
    for folder in folders:
        path = ROOT / folder
        found = [path] if path.is_file() else [*path.rglob("*.py"), *path.rglob("*.md")]
        yield from sorted(p for p in found if p != CHECKLIST)


def _where(pattern: re.Pattern[str], folders: tuple[str, ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sources(*folders):
        text = path.read_text(encoding="utf-8")
        for match in pattern.finditer(text):  # a whole file: a reference may wrap a line
            number = text.count("\n", 0, match.start()) + 1
            where = f"{path.relative_to(ROOT)}:{number}"
            found.setdefault(" ".join(match.group(0).split()), []).append(where)
    return found


def cited_ids(*folders: str) -> dict[str, list[str]]:
    """Every ID cited under ``folders``, with the ``path:line`` of each citation."""
    return _where(_CITED, folders)


def cited_abbreviations(*folders: str) -> dict[str, list[str]]:
    found = _where(_ABBREVIATION, folders)
    return {name: where for name, where in found.items() if name not in _NOT_ABBREVIATIONS}


def ad_hoc_references(*folders: str) -> dict[str, list[str]]:
    return _where(_AD_HOC, folders)


def uncovered_ids() -> list[str]:
    """Checklist items that no file under ``tests/`` cites (docstrings, coverage tables)."""
    return sorted(defined_ids() - set(cited_ids("tests")))
