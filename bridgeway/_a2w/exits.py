"""ASGIToWSGI's loop pools across ``fork()`` and interpreter exit.

Nothing is created at import or construction. A pool inherited through ``fork()`` is
dropped in the child: its loops share epoll state with the parent and must not even be
closed there. At interpreter exit every live pool is shut down, all at once (each pool's
``shutdown()`` is in ``_a2w.pool_base``).

The registry holds pools as ``Registered`` (what these hooks call), so that the pool
module imports this one and not the other way round.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import Protocol


class Registered(Protocol):
    """What the fork and exit hooks call on a pool (``_a2w.pool.LoopPool``)."""

    def forget(self) -> None: ...
    def shutdown_apart(self, name: str) -> threading.Thread | None: ...


_pools: weakref.WeakSet[Registered] = weakref.WeakSet()
_exit_hook_registered = False
_exit_lock = threading.Lock()


def register(pool: Registered) -> None:
    """Count ``pool`` among the process's pools (held weakly)."""
    _pools.add(pool)


def _forget_inherited_pools() -> None:
    for pool in list(_pools):
        pool.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_pools)


def ensure_exit_hook() -> None:
    """Register the exit hook once per process, when the first loop is made."""
    global _exit_hook_registered
    with _exit_lock:
        if not _exit_hook_registered:
            _register_exit_hook()
            _exit_hook_registered = True


def _register_exit_hook() -> None:
    """Shut the loops down at interpreter exit, *before* non-daemon threads are joined:
    a lifespan resource that owns such a thread (aiosqlite's connection thread, an
    executor) is only released by the lifespan shutdown, so running it from a plain
    ``atexit`` hook (which runs after that join) would hang the exit for ever.
    ``concurrent.futures`` uses the same hook for the same reason."""
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(shutdown_all_pools)
            return
        except RuntimeError:  # the interpreter is already shutting down
            pass
    atexit.register(shutdown_all_pools)


def shutdown_all_pools() -> None:
    """Every pool at once: each is bounded by its own timeouts, but one after another a
    process with many adapters (one per test client) waited their sum at exit, 5 s for
    each pool whose loop was still out with a response the server never closed."""
    closers = [pool.shutdown_apart("bridgeway-asgi-exit") for pool in list(_pools)]
    for closer in closers:
        if closer is not None:
            closer.join()
