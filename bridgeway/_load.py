"""Importing the user's app from ``module:attr``, with errors that fit on one line.

Used by the ``bridgeway`` command (``cli``) and by the server entry points
(``target``). An import that fails inside the user's module is reported with the file
and line where it failed (the innermost frame of the user's code, or a
``SyntaxError``'s own position), so the one line still says where to look.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

__all__ = ("TARGET_ENV", "LoadError", "load")

# The variable that names the app for bridgeway.target (set by ``bridgeway serve``).
TARGET_ENV = "BRIDGEWAY_APP"


_IMPORTLIB = os.path.dirname(importlib.__file__) + os.sep


class LoadError(ValueError):
    """The app named ``module:attr`` cannot be imported or found; the message is one line."""


def _where(exc: BaseException) -> str:
    """`` (path, line N)`` of the failure in the user's code (the innermost frame of the
    traceback outside importlib), or ``""`` when there is none."""
    if isinstance(exc, SyntaxError):
        return ""  # its message ends with "(file, line N)" already
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        # importlib's frames and this module's say nothing about the user's code
        if not frame.filename.startswith(("<frozen", _IMPORTLIB)) and frame.filename != __file__
    ]
    if not frames:
        return ""  # the module itself was not found
    filename, lineno = frames[-1].filename, frames[-1].lineno or 0
    try:
        shown = os.path.relpath(filename)
    except ValueError:  # another drive (Windows)
        shown = filename
    if shown.startswith(".."):
        shown = filename
    return f" ({shown}, line {lineno})"


def load(spec: str) -> Any:
    """Import ``module:attr`` (``attr`` may be dotted) from the current directory."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise LoadError(f"app {spec!r} must be given as module:attr (e.g. myproject.asgi:app)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as uvicorn and gunicorn do
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        text = " ".join(str(exc).split())
        raise LoadError(
            f"cannot import {module_name!r}: {type(exc).__name__}: {text}{_where(exc)}"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LoadError(f"{module_name!r} has no attribute {attr!r}") from None
    return obj
