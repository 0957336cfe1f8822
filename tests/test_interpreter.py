"""bridgeway says, when imported in a Python sub-interpreter, that the app may fail to
import there and how to serve it from the main one (issue 15: mod_wsgi application
groups). The live case, FastAPI under Apache, is in test_hosts_modwsgi.py."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import types
from pathlib import Path

import pytest

from bridgeway import _interpreter


def _modwsgi(group: object) -> types.ModuleType:
    module = types.ModuleType("mod_wsgi")
    if group is not None:
        module.application_group = group  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        pytest.param("", None, id="global-is-the-main-interpreter"),
        pytest.param(
            "localhost|/app",
            ("the mod_wsgi application group 'localhost|/app'", _interpreter.MODWSGI_FIX),
            id="resource-group",
        ),
        pytest.param(
            "named",
            ("the mod_wsgi application group 'named'", _interpreter.MODWSGI_FIX),
            id="named",
        ),
        # No usable attribute: CPython's own answer counts (here, the main interpreter).
        pytest.param(None, None, id="no-attribute"),
        pytest.param(3, None, id="not-a-string"),
    ],
)
def test_modwsgi_application_groups(group: object, expected: object) -> None:
    assert _interpreter.subinterpreter(_modwsgi(group)) == expected


def test_the_main_interpreter_is_not_a_subinterpreter() -> None:
    assert "mod_wsgi" not in sys.modules
    assert _interpreter.subinterpreter() is None
    assert _interpreter._generic() is None


def test_the_warning_names_the_directive(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bridgeway"):
        assert _interpreter.warn_if_subinterpreter(_modwsgi("localhost|/second")) is True
        assert _interpreter.warn_if_subinterpreter(_modwsgi("")) is False
    (record,) = caplog.records
    message = record.getMessage()
    assert "application group 'localhost|/second'" in message
    assert "WSGIApplicationGroup %{GLOBAL}" in message
    assert "PyO3 modules do not yet support subinterpreters" in message


def test_a_real_subinterpreter_is_detected(tmp_path: Path) -> None:
    """CPython's private interpreters module runs code in a new sub-interpreter: the
    detection (loaded from its file: only the standard library) says where it runs."""
    module = next(
        (m for m in ("_interpreters", "_xxsubinterpreters") if importlib.util.find_spec(m)),
        None,
    )
    assert module is not None, "this CPython has no interpreters module"
    interpreters = importlib.import_module(module)
    out = tmp_path / "out.txt"
    code = (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('probe', {_interpreter.__file__!r})\n"
        "m = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        f"open({str(out)!r}, 'w').write(repr(m.subinterpreter()))\n"
    )
    interp = interpreters.create()
    try:
        run = getattr(interpreters, "run_string", None) or interpreters.exec
        run(interp, code)
    finally:
        interpreters.destroy(interp)
    found = out.read_text()
    assert found.startswith("('sub-interpreter "), found
    assert "--single-interpreter" in found
