"""A fleet: several real servers started at once, by server name (the live tests' module
fixtures each serve one app on every server of a table)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from tests.live.servers import ServerProcess, ServerSpec, running_servers


@contextmanager
def running_fleet(
    launches: Sequence[tuple[ServerSpec, str]],
    *,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/",
    stop_timeout: float | None = None,
) -> Iterator[dict[str, ServerProcess]]:
    """``running_servers()`` (all launched, then each waited for; all stopped at the end),
    yielding ``{server name: process}``."""
    with running_servers(
        launches, env=env, ready_path=ready_path, stop_timeout=stop_timeout
    ) as servers:
        yield {server.spec.name: server for server in servers}
