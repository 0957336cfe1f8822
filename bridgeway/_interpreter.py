"""Is bridgeway running in a Python sub-interpreter? Said once, at import, in the log.

Apache mod_wsgi runs each application group in a sub-interpreter of its own unless told
``WSGIApplicationGroup %{GLOBAL}`` (mod_wsgi-express uses the main interpreter by
default); uWSGI's multiple interpreter mode does the same for a second mounted app.
Many ASGI stacks cannot live there: PyO3 extensions (pydantic-core, so FastAPI) raise
``ImportError: PyO3 modules do not yet support subinterpreters`` in every interpreter
but the first that imported them, and C extensions that use the simplified GIL API can
deadlock. The failure happens when the *app* is imported, before any adapter exists, so
the only place bridgeway can speak is its own import, which entry files do first: the
warning lands in the server's error log just above the ``ImportError`` and names the
fix. Nothing is refused: a pure-Python app in a single sub-interpreter works.
"""

from __future__ import annotations

import importlib
import logging
import sys
from types import ModuleType

logger = logging.getLogger("bridgeway")

MODWSGI_FIX = (
    "serve it in the main interpreter: `WSGIApplicationGroup %{GLOBAL}` in Apache's"
    " configuration (or `application-group=%{GLOBAL}` on its WSGIScriptAlias;"
    " mod_wsgi-express does this unless given --application-group)"
)
GENERIC_FIX = "serve it in the main interpreter (uWSGI: --single-interpreter)"


def _interpreter_id(value: object) -> int:
    # 3.13's _interpreters gives (id, whence) pairs; older versions an InterpreterID.
    if isinstance(value, tuple):
        value = value[0]
    return int(value)  # type: ignore[call-overload, no-any-return]


def _generic() -> str | None:
    """``"sub-interpreter N"`` when CPython says this is not its main interpreter."""
    for name in ("_interpreters", "_xxsubinterpreters"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        try:
            current = _interpreter_id(module.get_current())
            main = _interpreter_id(module.get_main())
        except Exception:  # a private module: any change of shape means "cannot tell"
            return None
        return None if current == main else f"sub-interpreter {current}"
    return None


def subinterpreter(modwsgi: ModuleType | None = None) -> tuple[str, str] | None:
    """``(where, fix)`` when this code runs in a sub-interpreter, else None.

    ``modwsgi`` is the ``mod_wsgi`` module (looked up in ``sys.modules``: Apache's
    mod_wsgi puts it there before it loads any script)."""
    modwsgi = modwsgi or sys.modules.get("mod_wsgi")
    if modwsgi is not None:
        group = getattr(modwsgi, "application_group", None)
        if isinstance(group, str):
            # "" is %{GLOBAL}, the main interpreter.
            return (f"the mod_wsgi application group {group!r}", MODWSGI_FIX) if group else None
    where = _generic()
    return (where, GENERIC_FIX) if where else None


def warn_if_subinterpreter(modwsgi: ModuleType | None = None) -> bool:
    """Log the warning (once per interpreter: this module is imported once in each)."""
    found = subinterpreter(modwsgi)
    if found is None:
        return False
    where, fix = found
    logger.warning(
        "ASGIToWSGI: running in %s, a Python sub-interpreter. ASGI apps built on PyO3"
        " extensions fail to import there (FastAPI's pydantic-core: 'ImportError: PyO3"
        " modules do not yet support subinterpreters', in every sub-interpreter but the"
        " first), and some C extensions deadlock; %s.",
        where,
        fix,
    )
    return True
