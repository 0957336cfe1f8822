"""Every test in tests/servers/ runs real servers or example processes: the ``servers``
marker is set by folder here, so the fast lane (``-m "not servers"``) leaves them out even
where a module forgets its ``pytestmark``."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.servers)
