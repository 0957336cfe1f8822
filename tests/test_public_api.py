from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import bridgeway


def test_all_is_honest() -> None:
    public = {name for name in dir(bridgeway) if not name.startswith("_")}
    modules = {"errors", "wsgi_to_asgi", "asgi_to_wsgi", "detect", "dispatch", "cli", "target"}
    assert set(bridgeway.__all__) == public - modules
    for name in bridgeway.__all__:
        if name == "AppKind":  # a typing.Literal alias: its __module__ is typing's
            assert bridgeway.AppKind is bridgeway.detect.AppKind
            continue
        assert getattr(bridgeway, name).__module__.startswith("bridgeway")


def test_version_is_written_once() -> None:
    from importlib.metadata import version

    from bridgeway._version import __version__

    assert bridgeway.__version__ == __version__
    assert version("bridgeway") == __version__  # pyproject reads it from _version.py
    done = subprocess.run(
        [sys.executable, "-m", "bridgeway", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == f"bridgeway {__version__}\n"


@pytest.mark.parametrize("cls", [bridgeway.ASGIDispatcher, bridgeway.WSGIDispatcher])
def test_dispatchers_name_their_parameters(cls: type) -> None:
    """help() and type checkers see every option (no ``**options: Any``), and each one
    is described in the class docstring."""
    parameters = inspect.signature(cls).parameters
    assert all(p.kind is not p.VAR_KEYWORD for p in parameters.values())
    documented = inspect.getdoc(bridgeway.ASGIDispatcher) or ""
    for name in parameters:
        assert f":param {name}:" in documented, name


@pytest.mark.parametrize("cls", [bridgeway.WSGIToASGI, bridgeway.ASGIToWSGI])
def test_adapters_document_every_parameter(cls: type) -> None:
    parameters = set(inspect.signature(cls).parameters) - {"app"}
    documented = inspect.getdoc(cls) or ""
    missing = [name for name in parameters if f":param {name}:" not in documented]
    assert not missing


def test_py_typed_is_shipped() -> None:
    from importlib.resources import files

    assert files("bridgeway").joinpath("py.typed").is_file()
