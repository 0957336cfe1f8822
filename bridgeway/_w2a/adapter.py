"""What WSGIToASGI's internals read of the adapter: its settings and its worker pool.

``bridgeway.wsgi_to_asgi.WSGIToASGI`` is the one implementation. A protocol rather than
the class, so that imports only go down: this package never imports the public module
built on it (``tests/test_import_graph.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._protocol import FileWrapper
    from .._types import WSGIApp
    from .workers import WorkerPool


class Adapter(Protocol):
    """A ``WSGIToASGI`` as its requests see it (read-only: see its docstring)."""

    @property
    def app(self) -> WSGIApp: ...
    @property
    def multiprocess(self) -> bool: ...
    @property
    def keep_underscore_headers(self) -> bool: ...
    @property
    def max_header_repeats(self) -> int | None: ...
    @property
    def strict_headers(self) -> bool: ...
    @property
    def watch_disconnect(self) -> bool: ...
    @property
    def cancel_timeout(self) -> float: ...
    @property
    def propagate_exceptions(self) -> bool: ...
    @property
    def close_after_send(self) -> bool: ...
    @property
    def errors(self) -> Any: ...
    @property
    def errors_from_server(self) -> bool: ...
    @property
    def file_wrapper(self) -> type[FileWrapper]: ...
    @property
    def asgi_inside(self) -> bool: ...
    def pool(self) -> WorkerPool: ...
