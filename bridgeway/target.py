"""Server entry points that wrap an app of the other kind: ``bridgeway.target:asgi``
and ``bridgeway.target:wsgi``.

    BRIDGEWAY_APP=myproject.wsgi:application uvicorn bridgeway.target:asgi
    BRIDGEWAY_APP=myproject.main:api gunicorn bridgeway.target:wsgi

The app named by ``BRIDGEWAY_APP`` (``module:attr``) is imported when the server
imports this module, as the server would import the app itself (in its worker, after
any fork, unless told to preload), so a missing or wrong ``BRIDGEWAY_APP`` stops the
server at startup with the one-line error of ``bridgeway serve``, not at the first
request. It is passed through ``as_asgi`` / ``as_wsgi`` at the first call of ``asgi`` /
``wsgi`` (wrapped only when its kind differs).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from ._load import TARGET_ENV, LoadError, load
from ._types import Environ, Receive, Scope, Send, StartResponse
from .detect import as_asgi, as_wsgi

__all__ = ("LoadError", "asgi", "load", "wsgi")

_made: dict[str, Any] = {}
_lock = threading.Lock()


def _load_target() -> Any:
    spec = os.environ.get(TARGET_ENV)
    if not spec:
        raise LoadError(
            f"set {TARGET_ENV}=module:attr to serve bridgeway.target:asgi or"
            " bridgeway.target:wsgi (or run: bridgeway serve module:attr --server NAME)"
        )
    return load(spec)


def _resolve(kind: str) -> Any:
    with _lock:
        if kind not in _made:
            _made[kind] = as_asgi(_APP) if kind == "asgi" else as_wsgi(_APP)
        return _made[kind]


class _LazyASGI:
    """An ASGI 3 app that wraps the imported one at its first call (the lifespan
    scope, or the first request)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _resolve("asgi")(scope, receive, send)


class _LazyWSGI:
    """A WSGI app that wraps the imported one at its first call."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        result: Iterable[bytes] = _resolve("wsgi")(environ, start_response)
        return result


# At import, so that the server's startup fails, not its first request. ``from None``:
# the one-line message is the whole story (load() put the user's file and line in it).
try:
    _APP = _load_target()
except LoadError as error:
    raise LoadError(str(error)) from None

# Real attributes, not a module __getattr__: hypercorn finds the app with
# eval(name, vars(module)), which never consults one.
asgi = _LazyASGI()
wsgi = _LazyWSGI()
