"""The in-process round trip: a WSGIToASGI request whose WSGI app (directly, or behind
WSGI middleware) is a bridgeway ASGIToWSGI of the same process.

WSGIToASGI puts an ``Upstream`` in the environ it builds, under the extension key
``UPSTREAM_KEY`` (PEP 3333 §Specification Details lets a server add such keys; WSGI
middleware copies them along). An ASGIToWSGI further in may use it to carry across what
a WSGI environ cannot: only when it is called in the thread that WSGIToASGI runs the
WSGI app in (``is_caller``), so an environ kept or copied elsewhere is never taken for a
live round trip. Nothing here does I/O; the two adapters decide what to do with it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ._types import Scope

if TYPE_CHECKING:
    from ._w2a_cycle import HTTPCycle

UPSTREAM_KEY = "bridgeway.upstream"


class Upstream:
    """One WSGIToASGI request, as seen from a bridgeway ASGIToWSGI further in."""

    __slots__ = ("app", "cycle", "environ", "scope", "thread")

    def __init__(
        self, scope: Scope, environ: dict[str, Any], cycle: HTTPCycle, app: object
    ) -> None:
        self.scope = scope  # the ASGI scope the server gave WSGIToASGI
        # A copy of the environ WSGIToASGI built from it (a C-level dict copy: cheap on
        # the hot path): an ASGIToWSGI compares it with its own environ to see whether
        # middleware in between changed the request (its headers, its path).
        self.environ = environ
        self.thread: int | None = None  # ident of the thread that calls the WSGI app
        # The request's responder: an ASGIToWSGI further in runs its app as a task of
        # this request, on the server's event loop (``HTTPCycle.post_nested``).
        self.cycle = cycle
        # The WSGI app WSGIToASGI calls: when it is the ASGIToWSGI itself (no WSGI
        # middleware in between), the server's lifespan reached that ASGI app directly
        # (WSGIToASGI forwards it) and its ``state`` is in ``scope``.
        self.app = app

    def is_caller(self) -> bool:
        """Whether the current thread is the one WSGIToASGI calls the WSGI app in."""
        return self.thread == threading.get_ident()


def upstream_of(environ: dict[str, Any]) -> Upstream | None:
    """The live round trip ``environ`` belongs to, or None."""
    upstream = environ.get(UPSTREAM_KEY)
    if type(upstream) is Upstream and upstream.is_caller():
        return upstream
    return None
