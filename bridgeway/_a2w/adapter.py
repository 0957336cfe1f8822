"""What ASGIToWSGI's internals read of the adapter: its settings and its loop pool.

``bridgeway.asgi_to_wsgi.ASGIToWSGI`` is the one implementation. A protocol rather than
the class, so that imports only go down: this package never imports the public module
built on it (``tests/test_import_graph.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .._types import ASGIApp
    from .lifespan import LifespanMode
    from .pool import LoopPool


class Adapter(Protocol):
    """An ``ASGIToWSGI`` as its requests see it (read-only: see its docstring)."""

    @property
    def app(self) -> ASGIApp: ...
    @property
    def lifespan(self) -> LifespanMode: ...
    @property
    def chunk_size(self) -> int: ...
    @property
    def disconnect_grace(self) -> float: ...
    @property
    def background_timeout(self) -> float: ...
    @property
    def disconnect_poll_interval(self) -> float: ...
    @property
    def wait_background(self) -> bool: ...
    @property
    def propagate_exceptions(self) -> bool: ...
    def pool(self) -> LoopPool: ...
