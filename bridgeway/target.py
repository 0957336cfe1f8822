"""Server entry points that wrap an app of the other kind: ``bridgeway.target:asgi``
and ``bridgeway.target:wsgi``.

    BRIDGEWAY_APP=myproject.wsgi:application uvicorn bridgeway.target:asgi
    BRIDGEWAY_APP=myproject.main:api gunicorn bridgeway.target:wsgi

The app named by ``BRIDGEWAY_APP`` (``module:attr``) is imported at the first call of
``asgi`` / ``wsgi`` (in the server's worker, after any fork) and passed through
``as_asgi`` / ``as_wsgi``, so it is wrapped only when its kind differs.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Iterable
from typing import Any

from ._types import Environ, Receive, Scope, Send, StartResponse
from .detect import as_asgi, as_wsgi

__all__ = ("LoadError", "asgi", "load", "wsgi")

TARGET_ENV = "BRIDGEWAY_APP"
_made: dict[str, Any] = {}
_lock = threading.Lock()


class LoadError(ValueError):
    """The app named ``module:attr`` cannot be imported or found; the message is one line."""


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
        raise LoadError(f"cannot import {module_name!r}: {type(exc).__name__}: {text}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LoadError(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


def _resolve(kind: str) -> Any:
    with _lock:
        if kind not in _made:
            spec = os.environ.get(TARGET_ENV)
            if not spec:
                raise LoadError(f"set {TARGET_ENV}=module:attr to serve bridgeway.target:{kind}")
            app = load(spec)
            _made[kind] = as_asgi(app) if kind == "asgi" else as_wsgi(app)
        return _made[kind]


class _LazyASGI:
    """An ASGI 3 app that imports and wraps the real one at its first call (the
    lifespan scope, or the first request): in the worker process, after any fork."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _resolve("asgi")(scope, receive, send)


class _LazyWSGI:
    """A WSGI app that imports and wraps the real one at its first call."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        result: Iterable[bytes] = _resolve("wsgi")(environ, start_response)
        return result


# Real attributes, not a module __getattr__: hypercorn finds the app with
# eval(name, vars(module)), which never consults one.
asgi = _LazyASGI()
wsgi = _LazyWSGI()
