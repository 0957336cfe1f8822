"""The ``contextvars`` context that bridgeway hands across a thread or loop boundary.

Both adapters run the application in a copy of the caller's context, so what the
server's side set (a tracing span, log bindings, a request id) is visible to the app
(W2A: the request task's context in the worker thread; A2W-LIFE-09: the WSGI thread's
context in the app's task).

One variable must not cross: sniffio's ``current_async_library_cvar``. anyio sets it
when it runs an event loop (``anyio.run``, its pytest plugin, ``start_blocking_portal``)
and sniffio reads it *before* it looks for a running loop. Copied into a WSGIToASGI
worker thread it tells a WSGI app that calls ``anyio.run()`` that trio is already
running in its thread; copied into an ASGIToWSGI task on an asyncio loop it makes
``anyio.to_thread.run_sync`` (Starlette's ``run_in_threadpool``) call trio from asyncio.
anyio's and trio's own ``to_thread.run_sync`` clear it in the worker's context for the
same reason; so does bridgeway.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._round_trip import RoundTrip

_async_library: contextvars.ContextVar[Any] | None
try:
    from sniffio import current_async_library_cvar as _async_library
except ImportError:  # sniffio is optional for anyio >= 4.12; nothing to clear then
    _async_library = None


def crossing_context(context: contextvars.Context | None = None) -> contextvars.Context:
    """A copy of ``context`` (default: the current one) for code that runs in another
    thread or on another event loop: every variable kept, except that no async library
    is claimed to be running there."""
    ctx = contextvars.copy_context() if context is None else context.copy()
    if _async_library is not None and ctx.get(_async_library) is not None:
        ctx.run(_async_library.set, None)
    return ctx


# The ASGIToWSGI request whose app task (or a task or thread it started) is running,
# as a ``_round_trip.RoundTrip``; None everywhere else. A WSGIToASGI called from inside
# that app, in the same process (a WSGI app mounted in an ASGI app that a WSGI server
# serves through ASGIToWSGI), gives its own WSGI app the keys of the server's environ no
# ASGI scope can carry (``_w2a.inherit.inherit_upstream``) and hands back what an ASGI
# response cannot carry. A context variable rather than a scope key: scopes hold only
# ASGI-legal types (A2W-SCOPE-14), and the value follows the request's task into every
# task and thread that serves it, and nowhere else.
round_trip: contextvars.ContextVar[RoundTrip | None] = contextvars.ContextVar(
    "bridgeway.round_trip", default=None
)
