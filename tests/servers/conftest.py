"""Every test in tests/servers/ runs real servers or example processes: the ``servers``
marker is set by folder here, so the fast lane (``-m "not servers"``) leaves them out even
where a module forgets its ``pytestmark``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live.servers import ServerProcess

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.servers)


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client of the module's ``server`` fixture (the examples' tests)."""
    # uWSGI's --http-socket closes each connection after the response while answering
    # HTTP/1.1 without "Connection: close": a reused connection races with that close.
    keepalive = 0 if server.spec.name == "uwsgi" else None
    limits = httpx.Limits(max_keepalive_connections=keepalive)
    with httpx.Client(base_url=server.base_url, timeout=10.0, limits=limits) as c:
        yield c
