"""Every log line bridgeway writes names the part of it that speaks, once.

The records go to the ``bridgeway`` logger, so a configured format already shows that
name (``ERROR:bridgeway:...``); a message that began with ``bridgeway:`` repeated it.
Under uvicorn or gunicorn that logger is unconfigured and Python's last-resort
handler prints the bare message, so the message itself still says where it comes
from: the adapter or dispatcher that logs it (issue 16, "log lines repeat the name").
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import pytest

import bridgeway
from bridgeway._types import StartResponse
from tests.support.w2a_driver import call

PACKAGE = Path(bridgeway.__file__).parent
SPEAKERS = ("WSGIToASGI: ", "ASGIToWSGI: ", "ASGIDispatcher: ", "WSGIDispatcher: ")
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def _log_messages() -> list[tuple[str, int, str]]:
    """(file, line, message) of every ``logger.<level>("...")`` call in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            target = node.func.value
            if node.func.attr not in LEVELS or not (
                isinstance(target, ast.Name) and target.id == "logger"
            ):
                continue
            first = node.args[0] if node.args else None
            if isinstance(first, ast.JoinedStr):
                first = first.values[0] if first.values else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((str(path.relative_to(PACKAGE)), node.lineno, first.value))
    return found


def test_the_package_logs_through_one_logger_named_bridgeway() -> None:
    messages = _log_messages()
    assert len(messages) > 50  # the scan finds the calls (it would pass on none)


@pytest.mark.parametrize(("where", "line", "message"), _log_messages(), ids=lambda v: str(v)[:40])
def test_each_message_names_its_speaker_and_not_the_logger(
    where: str, line: int, message: str
) -> None:
    assert not message.startswith("bridgeway"), f"{where}:{line} repeats the logger's name"
    assert message.startswith(SPEAKERS), f"{where}:{line} does not say who speaks: {message!r}"


@pytest.mark.anyio
async def test_a_configured_format_shows_the_name_once(caplog: pytest.LogCaptureFixture) -> None:
    # A real record, through the public API: a WSGI app that writes past its
    # Content-Length under WSGIToASGI, formatted as logging.basicConfig would.
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"four"]

    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        await call(bridgeway.WSGIToASGI(app))
    lines = [logging.Formatter(logging.BASIC_FORMAT).format(r) for r in caplog.records]
    assert any(line.startswith("ERROR:bridgeway:WSGIToASGI: ") for line in lines), lines
    assert not any("bridgeway:bridgeway" in line for line in lines), lines
