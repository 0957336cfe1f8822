"""What kind of application is this callable, and how to make it the kind you need.

``app_kind(app)`` answers ``"asgi3"``, ``"asgi2"`` or ``"wsgi"`` by looking at the
callable only, never by calling it (calling an app has side effects):

1. bridgeway's own objects know their kind (adapters, dispatchers).
2. asgiref's explicit hints ``_asgi_single_callable`` / ``_asgi_double_callable``.
3. A class is an ASGI 2 app when its ``__call__`` is ``async (receive, send)`` and its
   ``__init__`` takes ``scope`` (ASGI-main §Legacy Applications), a WSGI app when its
   ``__init__`` takes ``(environ, start_response)`` (PEP 3333 allows a class).
4. Otherwise the function that runs (the callable itself, or its type's ``__call__``):
   ``async`` with 3 positional parameters is ASGI 3 (Starlette, FastAPI, Quart,
   Django's ``ASGIHandler``); plain with 2 is WSGI (Flask, Django's ``WSGIHandler``);
   plain with 1 is an ASGI 2 double callable (``app(scope)`` returns the instance).

Anything else (``*args``, a sync callable taking 3 arguments, an async one taking 2) is
ambiguous and raises ``TypeError`` naming the callable and how to fix it. No framework
is imported: they are recognised by their call signatures.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from asgiref.compatibility import guarantee_single_callable
from asgiref.sync import iscoroutinefunction

from ._types import ASGIApp, WSGIApp
from .asgi_to_wsgi import ASGIToWSGI
from .wsgi_to_asgi import WSGIToASGI

__all__ = ("AppKind", "app_kind", "as_asgi", "as_wsgi")

AppKind = Literal["asgi3", "asgi2", "wsgi"]

# The class attribute by which bridgeway's dispatchers (``bridgeway.dispatch``) say
# their kind: "asgi3" for ASGIDispatcher (which has ``as_wsgi()``), "wsgi" for
# WSGIDispatcher (which has ``as_asgi()``).
DISPATCHER_KIND = "_bridgeway_dispatcher_kind"

_HINT = (
    "mark an ASGI 3 app with `app._asgi_single_callable = True`, or wrap it yourself"
    " with bridgeway.WSGIToASGI / bridgeway.ASGIToWSGI"
)


def _name(app: object) -> str:
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    module = getattr(app, "__module__", None) or type(app).__module__
    return f"{module}.{name}" if module else str(name)


def _positional(func: Any) -> int | None:
    """How many positional arguments ``func`` takes once bound; None for ``*args``
    or when the signature cannot be read (some builtins)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    count = 0
    for param in sig.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return None
        positional = param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)
        if positional and param.default is param.empty:
            count += 1
    return count


def _class_kind(cls: type) -> AppKind:
    call = cls.__dict__.get("__call__") or next(
        (k.__dict__["__call__"] for k in cls.__mro__ if "__call__" in k.__dict__), None
    )
    init_args = _positional(cls)  # the constructor's signature, self excluded
    if call is not None and iscoroutinefunction(call) and init_args == 1:
        return "asgi2"
    if init_args == 2 and hasattr(cls, "__iter__"):
        return "wsgi"
    if call is not None and (iscoroutinefunction(call) or _positional(call) == 3):
        # __call__(self, ...) unbound: 3 positional arguments is (self, environ, start_response).
        family = "ASGI" if iscoroutinefunction(call) else "WSGI"
        raise TypeError(
            f"{_name(cls)} is a class whose instances are {family} apps: pass an instance,"
            f" {cls.__name__}(...), not the class"
        )
    raise TypeError(
        f"cannot tell what kind of app the class {_name(cls)} is: an ASGI 2 class takes"
        " __init__(scope) and has async __call__(receive, send); a WSGI class takes"
        f" __init__(environ, start_response) and is iterable; {_HINT}"
    )


def app_kind(app: object) -> AppKind:
    """Return ``"asgi3"``, ``"asgi2"`` or ``"wsgi"`` for ``app``; ``TypeError`` if unsure."""
    # bridgeway's own objects first. The dispatchers say their kind in a class attribute
    # rather than being named here: dispatch imports this module, and imports only go
    # one way (tests/test_import_graph.py).
    if isinstance(app, WSGIToASGI):
        return "asgi3"
    if isinstance(app, ASGIToWSGI):
        return "wsgi"
    kind: AppKind | None = getattr(type(app), DISPATCHER_KIND, None)
    if kind is not None:
        return kind
    if not callable(app):
        raise TypeError(f"{_name(app)} ({app!r}) is not callable, so it is not an app")
    if getattr(app, "_asgi_single_callable", False):
        return "asgi3"
    if getattr(app, "_asgi_double_callable", False):
        return "asgi2"
    if inspect.isclass(app):
        return _class_kind(app)
    call: Any = app if inspect.isfunction(app) or inspect.ismethod(app) else app.__call__
    is_async = iscoroutinefunction(call) or iscoroutinefunction(app)
    count = _positional(app)  # instances: their __call__ without self; partials unwrapped
    if is_async and count == 3:
        return "asgi3"
    if not is_async and count == 2:
        return "wsgi"
    if not is_async and count == 1:
        return "asgi2"
    taking = "*args (or an unreadable signature)" if count is None else f"{count} arguments"
    if is_async:
        shape = f"an async callable taking {taking}"
        expected = "ASGI 3 apps take (scope, receive, send)"
    else:
        shape = f"a sync callable taking {taking}"
        expected = (
            "WSGI apps take (environ, start_response), ASGI 2 apps take (scope) and ASGI 3"
            " apps are async and take (scope, receive, send)"
        )
    raise TypeError(f"cannot tell what kind of app {_name(app)} is: {shape}; {expected}; {_HINT}")


def as_asgi(app: Any, **wsgi_options: Any) -> ASGIApp:
    """Return ``app`` as an ASGI 3 app, wrapping only when needed.

    ASGI 3 apps come back unchanged, ASGI 2 double callables are made single
    (asgiref), WSGI apps are wrapped in ``WSGIToASGI(app, **wsgi_options)``, and an
    ``ASGIToWSGI`` is unwrapped rather than wrapped twice.
    """
    if isinstance(app, ASGIToWSGI):
        return app.app
    if getattr(type(app), DISPATCHER_KIND, None) == "wsgi":  # a WSGIDispatcher
        return app.as_asgi(**wsgi_options)  # type: ignore[no-any-return]
    kind = app_kind(app)
    if kind == "asgi3":
        return app  # type: ignore[no-any-return]
    if kind == "asgi2":
        return guarantee_single_callable(app)  # type: ignore[no-any-return,no-untyped-call]
    return WSGIToASGI(app, **wsgi_options)


def as_wsgi(app: Any, **asgi_options: Any) -> WSGIApp:
    """Return ``app`` as a WSGI app, wrapping only when needed.

    WSGI apps come back unchanged, ASGI apps (3 or 2) are wrapped in
    ``ASGIToWSGI(app, **asgi_options)``, and a ``WSGIToASGI`` is unwrapped.
    """
    if isinstance(app, WSGIToASGI):
        return app.app
    if getattr(type(app), DISPATCHER_KIND, None) == "asgi3":  # an ASGIDispatcher
        return app.as_wsgi(**asgi_options)  # type: ignore[no-any-return]
    if app_kind(app) == "wsgi":
        return app  # type: ignore[no-any-return]
    return ASGIToWSGI(app, **asgi_options)
