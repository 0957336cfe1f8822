"""Serve WSGI and ASGI apps side by side, by path prefix, with fallback routing.

Two classes with one set of arguments, one per kind of server:

* ``ASGIDispatcher(...)`` is an ASGI 3 app (for uvicorn, hypercorn, daphne, granian);
* ``WSGIDispatcher(...)`` is a WSGI app (for gunicorn, waitress, uWSGI, mod_wsgi).

``d.as_wsgi()`` / ``d.as_asgi()`` build the other one from the same mounts, so a
project can expose both entry points from one definition. Every mounted app is
converted (``detect.as_asgi`` / ``as_wsgi``) only when its kind differs from the
server's: under an ASGI server a WSGI mount runs through ``WSGIToASGI``, under a WSGI
server an ASGI mount runs through ``ASGIToWSGI``. One app mounted twice is converted
once (one thread pool, one lifespan).

Routing (``_mix.routing``): prefixes match on ``/`` boundaries, longest first; unmatched
paths go to ``default`` (404 when there is none). Mounts see the prefix in
``root_path`` (ASGI) or ``SCRIPT_NAME`` (WSGI), so Flask's ``url_for`` and Django's
``reverse()`` build prefixed links.

Fallback (``fallback=legacy``): after the matched app answered a status in
``fallback_on`` (default ``{404}``), the same request, body included, goes to
``fallback`` as the dispatcher received it. The body is replayed from a buffer of at
most ``replay_limit`` bytes; a bigger body is not buffered and the first answer stands.

Lifespan (ASGI server only): ``ASGIDispatcher`` runs the lifespan of every mount, the
default and the fallback (``_mix.fanout``); under a WSGI server each ``ASGIToWSGI`` made
here runs its mount's lifespan per loop, and ``WSGIDispatcher.shutdown()`` ends them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, ClassVar

from ._mix.asgi_fallback import not_found
from ._mix.asgi_fallback import serve_with_fallback as asgi_fallback
from ._mix.fanout import fan_out
from ._mix.replay import DEFAULT_FALLBACK_STATUSES, DEFAULT_REPLAY_LIMIT
from ._mix.routing import Routes, mount_environ, mount_scope, routing_path, wsgi_prefix
from ._mix.wsgi_fallback import not_found as wsgi_not_found
from ._mix.wsgi_fallback import serve_with_fallback as wsgi_fallback
from ._types import ASGIApp, Environ, Receive, Scope, Send, StartResponse, WSGIApp
from .asgi_to_wsgi import ASGIToWSGI
from .detect import AppKind, as_asgi, as_wsgi
from .errors import ServerContractError

__all__ = ("ASGIDispatcher", "WSGIDispatcher")

Mounts = Mapping[str, Any] | Iterable[tuple[str, Any]]


class _Config:
    """The arguments shared by both dispatchers (kept to build the other kind). The one
    signature both take: ``help()`` and the API page show it for each."""

    def __init__(
        self,
        mounts: Mounts = (),
        default: Any = None,
        *,
        fallback: Any = None,
        fallback_on: Collection[int] = DEFAULT_FALLBACK_STATUSES,
        replay_limit: int = DEFAULT_REPLAY_LIMIT,
        wsgi_options: Mapping[str, Any] | None = None,
        asgi_options: Mapping[str, Any] | None = None,
        startup_timeout: float = 60.0,
        shutdown_timeout: float = 30.0,
    ) -> None:
        pairs = list(mounts.items() if isinstance(mounts, Mapping) else mounts)
        if replay_limit < 0:
            raise ValueError("replay_limit must not be negative")
        self.mounts: list[tuple[str, Any]] = pairs
        self.default = default
        self.fallback = fallback
        self.fallback_on = frozenset(fallback_on)
        self.replay_limit = replay_limit
        self.wsgi_options = dict(wsgi_options or {})
        self.asgi_options = dict(asgi_options or {})
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self._connect()

    def _connect(self) -> None:
        """Wrap the mounts for this dispatcher's protocol (each dispatcher's own)."""
        raise NotImplementedError

    def _kwargs(self) -> dict[str, Any]:
        return {
            "default": self.default,
            "fallback": self.fallback,
            "fallback_on": self.fallback_on,
            "replay_limit": self.replay_limit,
            "wsgi_options": self.wsgi_options,
            "asgi_options": self.asgi_options,
            "startup_timeout": self.startup_timeout,
            "shutdown_timeout": self.shutdown_timeout,
        }


class ASGIDispatcher(_Config):
    """An ASGI 3 app routing by path prefix to WSGI and ASGI apps (see the module doc).

    :param mounts: ``{prefix: app}`` (or pairs); prefixes start with ``/``.
    :param default: the app for paths under no prefix (None: answer 404).
    :param fallback: the app (WSGI or ASGI) tried when the first answer's status is in
        ``fallback_on``; it gets the same request, body included, as the dispatcher
        received it (not mounted). None (default): no fallback.
    :param fallback_on: the statuses that send a request on to ``fallback`` (default
        ``{404}``).
    :param replay_limit: the most body bytes kept for a fallback (default 1 MiB); a
        bigger body is not buffered, and the first answer stands.
    :param wsgi_options: keyword arguments of the ``WSGIToASGI`` made for WSGI mounts.
    :param asgi_options: keyword arguments of ``ASGIToWSGI`` (used by ``as_wsgi()``).
    :param startup_timeout: the most seconds each mount's lifespan startup may take.
    :param shutdown_timeout: the most seconds each mount's lifespan shutdown may take.
    """

    # How detect.app_kind / as_wsgi recognise it (detect.DISPATCHER_KIND).
    _bridgeway_dispatcher_kind: ClassVar[AppKind] = "asgi3"

    def _connect(self) -> None:
        cache: dict[int, ASGIApp] = {}

        def convert(app: Any) -> ASGIApp:
            if id(app) not in cache:
                cache[id(app)] = as_asgi(app, **self.wsgi_options)
            return cache[id(app)]

        self._routes = Routes(
            [(p, convert(a)) for p, a in self.mounts],
            None if self.default is None else convert(self.default),
        )
        self._fallback = None if self.fallback is None else convert(self.fallback)
        self._labels = {id(a): p for p, a in self._routes.mounts}

    def as_wsgi(self, **asgi_options: Any) -> WSGIDispatcher:
        """A ``WSGIDispatcher`` with the same mounts, for a WSGI server."""
        kwargs = self._kwargs()
        kwargs["asgi_options"] = {**self.asgi_options, **asgi_options}
        return WSGIDispatcher(self.mounts, **kwargs)

    def lifespan_apps(self) -> list[tuple[str, ASGIApp]]:
        """Every distinct app whose lifespan runs, labelled by its mount prefix."""
        apps = self._routes.apps()
        if self._fallback is not None and all(a is not self._fallback for a in apps):
            apps.append(self._fallback)
        labels = []
        for app in apps:
            if app is self._fallback:
                label = "the fallback app"
            elif app is self._routes.default:
                label = "the default app"
            else:
                label = repr(self._labels[id(app)])
            labels.append((label, app))
        return labels

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await fan_out(
                self.lifespan_apps(),
                scope,
                receive,
                send,
                startup_timeout=self.startup_timeout,
                shutdown_timeout=self.shutdown_timeout,
            )
            return
        if "path" not in scope:
            raise ServerContractError(
                f"ASGIDispatcher cannot route a {kind!r} scope: it has no 'path'"
            )
        prefix, app = self._routes.match(routing_path(scope))
        if app is None:
            app = self._fallback or not_found
            await app(scope, receive, send)
            return
        child = mount_scope(scope, prefix)
        if kind == "http" and self._fallback is not None and self._fallback is not app:
            await asgi_fallback(
                app,
                child,
                self._fallback,
                scope,
                receive,
                send,
                self.fallback_on,
                self.replay_limit,
            )
            return
        await app(child, receive, send)


class WSGIDispatcher(_Config):
    """A WSGI app routing by path prefix to WSGI and ASGI apps (see the module doc).

    Takes the same arguments as ``ASGIDispatcher``; ``asgi_options`` are the keyword
    arguments of the ``ASGIToWSGI`` made for ASGI mounts, ``wsgi_options`` are kept for
    ``as_asgi()``. ``shutdown()`` ends the lifespans of those ASGI mounts.
    """

    # How detect.app_kind / as_asgi recognise it (detect.DISPATCHER_KIND).
    _bridgeway_dispatcher_kind: ClassVar[AppKind] = "wsgi"

    def _connect(self) -> None:
        cache: dict[int, WSGIApp] = {}
        self._adapters: list[ASGIToWSGI] = []

        def convert(app: Any) -> WSGIApp:
            if id(app) not in cache:
                wrapped = cache[id(app)] = as_wsgi(app, **self.asgi_options)
                if isinstance(wrapped, ASGIToWSGI) and wrapped is not app:
                    self._adapters.append(wrapped)
            return cache[id(app)]

        # WSGI paths are latin-1 spellings of UTF-8 bytes (PEP 3333): match in that form.
        self._routes = Routes(
            [(wsgi_prefix(p), convert(a)) for p, a in self.mounts],
            None if self.default is None else convert(self.default),
        )
        self._fallback = None if self.fallback is None else convert(self.fallback)

    def as_asgi(self, **wsgi_options: Any) -> ASGIDispatcher:
        """An ``ASGIDispatcher`` with the same mounts, for an ASGI server."""
        kwargs = self._kwargs()
        kwargs["wsgi_options"] = {**self.wsgi_options, **wsgi_options}
        return ASGIDispatcher(self.mounts, **kwargs)

    def shutdown(self, timeout: float | None = None) -> None:
        """Run lifespan shutdown of the ASGI mounts (the ``ASGIToWSGI`` made here)."""
        for adapter in self._adapters:
            adapter.shutdown(timeout)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        prefix, app = self._routes.match(environ.get("PATH_INFO", ""))
        if app is None:
            app = self._fallback or wsgi_not_found
            return app(environ, start_response)
        child = mount_environ(environ, prefix)
        if self._fallback is not None and self._fallback is not app:
            return wsgi_fallback(
                app,
                child,
                self._fallback,
                environ,
                start_response,
                self.fallback_on,
                self.replay_limit,
            )
        return app(child, start_response)
