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
from typing import TYPE_CHECKING, Any, Protocol

from ._types import Message, Scope

if TYPE_CHECKING:
    import contextvars
    from collections.abc import Callable

    from anyio.abc import TaskGroup

UPSTREAM_KEY = "bridgeway.upstream"


# The two sides of a round trip meet through the two protocols below, so that neither
# direction's package imports the other's (``tests/test_import_graph.py``).


class Guest(Protocol):
    """An ASGIToWSGI request run inside a WSGIToASGI one (``_a2w.nested.NestedRequest``),
    as ``_w2a.nested`` sees it."""

    pending: Any  # the app's coroutine until its task starts

    @property
    def context(self) -> contextvars.Context: ...
    @property
    def raised(self) -> BaseException | None: ...
    def abandon(self) -> None: ...
    def wsgi_gone(self) -> None: ...


class Host(Protocol):
    """The WSGIToASGI request an ASGIToWSGI further in runs in (``_w2a.cycle.HTTPCycle``),
    as ``_a2w.nested``, ``_w2a.nested`` and ``_carry`` see it."""

    carried: Any  # a ``_carry.Carried`` or None
    _group: TaskGroup | None  # the request's task group, once open
    _late: list[BaseException] | None  # errors of apps further in, raised late
    _nested: list[Any] | None  # the Guests spawned in it (``_w2a.nested``)

    def post_nested(self, callback: Callable[[], object]) -> bool: ...
    async def send_nested(self, message: Message, after_response: bool) -> None: ...
    def spawn_nested(self, request: Guest) -> None: ...


class Upstream:
    """One WSGIToASGI request, as seen from a bridgeway ASGIToWSGI further in."""

    __slots__ = ("app", "cycle", "environ", "scope", "thread")

    def __init__(self, scope: Scope, environ: dict[str, Any], cycle: Host, app: object) -> None:
        self.scope = scope  # the ASGI scope the server gave WSGIToASGI
        # A copy of the environ WSGIToASGI built from it (a C-level dict copy: cheap on
        # the hot path): an ASGIToWSGI compares it with its own environ to see whether
        # middleware in between changed the request (its headers, its path).
        self.environ = environ
        self.thread: int | None = None  # ident of the thread that calls the WSGI app
        # The request's responder: an ASGIToWSGI further in runs its app as a task of
        # this request, on the server's event loop (``_w2a.trip.TripResponse.post_nested``).
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
