"""Shared test configuration: every async test runs on asyncio and on trio."""

from __future__ import annotations

import inspect
import os

import pytest

# eventlet's green DNS imports dnspython patched, which imports httpcore2 when httpx2 is
# installed (the mcp SDK needs it), which imports trio when it is installed (the tests
# need it), and trio cannot be imported over eventlet's green socket ("'GreenSocket'
# has no attribute 'sendmsg'"): `import eventlet` fails. eventlet's own switch turns its
# green DNS off, in this process and every child (the greenlet tests and servers).
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")


@pytest.fixture(params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # "auto mode": a plain `async def test_...` gets the anyio marker *before* anyio's
    # own collection hook runs, so it is parametrised over both backends.
    if (
        isinstance(collector, pytest.Module | pytest.Class)
        and collector.istestfunction(obj, name)
        and inspect.iscoroutinefunction(obj)
    ):
        pytest.mark.anyio(obj)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture of this test runs (module-scoped server fleets included): tell
    # the live harness whether this test may start server processes (see live.servers).
    from tests.live import servers

    servers.CURRENT_TEST_MARKED_SERVERS = item.get_closest_marker("servers") is not None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # test_checklist.py's report: checklist items no test cites (see checklist_ids).
    from tests.support.checklist_ids import UNCOVERED

    uncovered = terminalreporter.config.stash.get(UNCOVERED, None)
    if uncovered:
        terminalreporter.section("checklist items no test cites")
        terminalreporter.line(", ".join(uncovered))
