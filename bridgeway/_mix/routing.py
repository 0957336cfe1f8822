"""Prefix routing for the dispatchers: pure functions, no I/O.

A mount prefix matches a path on a ``/`` boundary only: ``/api`` matches ``/api``,
``/api/`` and ``/api/x``, never ``/apix`` (peers that strip by length turn ``/app``
plus ``/application/z`` into ``lication/z``). The longest matching prefix wins, so
``/api/legacy`` beats ``/api``.

What a mounted app sees (the ASGI spec's reading: ``path`` includes ``root_path``):

* ASGI (ASGI-www §HTTP Connection Scope, and Starlette's ``Mount``): ``path`` stays
  the full path, ``root_path`` grows by the prefix; ``path`` starts with ``root_path``.
* WSGI (PEP 3333 §environ Variables, as werkzeug's ``DispatcherMiddleware``): the
  prefix moves from the front of ``PATH_INFO`` to the end of ``SCRIPT_NAME``; an
  exact match leaves ``PATH_INFO`` empty, which PEP 3333 allows ("the root").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from .._types import Environ, Scope

A = TypeVar("A")


def normalize_prefix(prefix: str) -> str:
    """``"/api/"`` -> ``"/api"``; a prefix must start with ``/`` and not be the root."""
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ValueError(f"mount prefix {prefix!r} must be a string starting with '/'")
    stripped = prefix.rstrip("/")
    if not stripped:
        raise ValueError(f"mount prefix {prefix!r} is the root: pass that app as default=")
    if "?" in stripped or "#" in stripped:
        raise ValueError(f"mount prefix {prefix!r} must be a path, without '?' or '#'")
    return stripped


def prefix_matches(prefix: str, path: str) -> bool:
    """True when ``path`` is ``prefix`` or lies under it on a segment boundary."""
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] == "/")


class Routes(Generic[A]):
    """Prefix -> app, matched longest prefix first, with an optional default app."""

    def __init__(self, mounts: Iterable[tuple[str, A]], default: A | None) -> None:
        table: dict[str, A] = {}
        for prefix, app in mounts:
            key = normalize_prefix(prefix)
            if key in table:
                raise ValueError(f"mount prefix {prefix!r} is given twice")
            table[key] = app
        # Longest first: the first match is the most specific one.
        self.mounts: list[tuple[str, A]] = sorted(table.items(), key=lambda kv: -len(kv[0]))
        self.default = default

    def match(self, path: str) -> tuple[str, A | None]:
        """``(prefix, app)`` for a routing path; ``("", default)`` when no prefix matches."""
        for prefix, app in self.mounts:
            if prefix_matches(prefix, path):
                return prefix, app
        return "", self.default

    def apps(self) -> list[A]:
        """Every distinct app (by identity), mounts first, default last."""
        seen: dict[int, A] = {}
        for _, app in self.mounts:
            seen.setdefault(id(app), app)
        if self.default is not None:
            seen.setdefault(id(self.default), self.default)
        return list(seen.values())


def routing_path(scope: Scope) -> str:
    """The part of an ASGI ``path`` below ``root_path``: what the dispatcher routes on.

    Some servers (daphne, granian with ``--root-path``) hand a ``path`` that does not
    carry ``root_path``; it is then taken whole, as ``_w2a.environ.split_path`` does.
    """
    path: str = scope["path"]
    root = (scope.get("root_path") or "").rstrip("/")
    if root and prefix_matches(root, path):
        return path[len(root) :]
    return path


def mount_scope(scope: Scope, prefix: str) -> Scope:
    """The scope a mount under ``prefix`` sees: ``root_path`` + prefix, full ``path``."""
    if not prefix:
        return scope
    root = (scope.get("root_path") or "").rstrip("/")
    child = dict(scope)
    child["root_path"] = root + prefix
    # ASGI-www: path includes root_path. Restore it when the server left it out.
    child["path"] = root + routing_path(scope)
    return child


def mount_environ(environ: Environ, prefix: str) -> Environ:
    """The environ a mount under ``prefix`` sees: the prefix moves to SCRIPT_NAME.

    WSGI keys are latin-1 decoded bytes (PEP 3333 "native strings"); the prefix is
    compared in that form, so a non-ASCII prefix is given in its UTF-8 bytes' latin-1
    spelling by ``WSGIDispatcher`` before it gets here.
    """
    if not prefix:
        return environ
    child = dict(environ)
    child["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "").rstrip("/") + prefix
    child["PATH_INFO"] = environ.get("PATH_INFO", "")[len(prefix) :]
    return child


def wsgi_prefix(prefix: str) -> str:
    """A unicode prefix in the latin-1 spelling WSGI environ strings use (PEP 3333)."""
    return prefix.encode("utf-8").decode("latin-1")
