"""What the process's greenlet library allows ASGIToWSGI: which library patched what, the
green sleep, the turn that greenlets without patched ``threading`` take, and the loop the
greenlet host can run (``_a2w.green_host``).

What cannot work, each said by one error at the first request of the process: a loop
that waits outside the patched selector (``uvloop``, from ``loop_factory`` or a global
policy) would block every greenlet of the worker while it waits: asyncio's own loop is
used instead. When ``select`` is not patched (``patch_all(select=False)``) no selector
waits cooperatively: the loop polls its selector, its greenlet sleeping (green sleep)
between polls. When requests come in on greenlets but ``threading`` is not patched, no
green wait can be had: inline loops take turns under one green semaphore
(``_a2w.greenlets.TurnLoop``): no "another loop is running", but no overlap either.

Only looks at modules already imported: importing gevent or eventlet has side effects.
"""

from __future__ import annotations

import asyncio
import logging
import os
import selectors
import sys
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("bridgeway")


def greenlet_library() -> str | None:
    """``"gevent"`` or ``"eventlet"`` when that library monkeypatched ``threading``, else
    None. Only looks at modules already imported: importing either has side effects."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return "gevent"
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("thread"):
        return "eventlet"
    return None


_logged: set[str] = set()


def log_once(message: str) -> None:
    """An error about the environment, logged once per process (not per adapter)."""
    if message not in _logged:
        _logged.add(message)
        logger.error(message)


_turn: Any = None


def green_sleep(seconds: float) -> None:
    """The green sleep of whichever of gevent and eventlet is imported."""
    _green_sleep("gevent" if "gevent" in sys.modules else "eventlet")(seconds)


def unpatched_turn() -> Any:
    """The process's turn (a semaphore of gevent or eventlet) when the caller is a
    greenlet of theirs (not its thread's main greenlet) although ``threading`` is not
    monkeypatched (a bare ``gevent.pywsgi`` server, ``patch_all(thread=False)``, uWSGI
    ``--gevent`` without monkeypatching), else None. The one running-loop slot of the
    thread is then shared by taking turns: see ``TurnLoop``."""
    global _turn
    greenlet = sys.modules.get("greenlet")
    if greenlet is None or greenlet.getcurrent().parent is None:
        return None
    if _turn is None:
        if "gevent" in sys.modules:
            from gevent.lock import Semaphore
        elif "eventlet" in sys.modules:
            from eventlet.semaphore import Semaphore
        else:
            return None
        _turn = Semaphore()
    return _turn


def _forget_turn() -> None:
    global _turn
    _turn = None  # the parent's semaphore: its hub is not ours


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_turn)


def _cooperative(loop: asyncio.AbstractEventLoop, library: str) -> bool:
    """Whether ``loop`` waits through a selector that yields to the greenlet hub."""
    selector = getattr(loop, "_selector", None)
    if library == "gevent":
        return type(selector).__module__ == "gevent.selectors"
    patcher = sys.modules["eventlet.patcher"]
    return isinstance(selector, selectors.SelectSelector) and patcher.is_monkey_patched("select")


def _green_sleep(library: str) -> Callable[[float], object]:
    return sys.modules[library].sleep  # type: ignore[no-any-return]


def make_loop(
    factory: Callable[[], asyncio.AbstractEventLoop], library: str
) -> tuple[asyncio.AbstractEventLoop, Callable[[float], object] | None]:
    """A loop for the host, and the green sleep to poll its selector with (None: its
    selector waits cooperatively). The first request of the process logs a loop that
    cannot (see the module docstring)."""
    loop = factory()
    if _cooperative(loop, library):
        return loop, None
    name = type(loop).__name__
    if getattr(loop, "_selector", None) is None:  # uvloop: nothing to poll
        loop.close()
        loop = asyncio.SelectorEventLoop()
        if _cooperative(loop, library):
            logger.error(
                "ASGIToWSGI: under %s, a %s would block every greenlet of the worker while"
                " it waits; ASGIToWSGI runs asyncio's SelectorEventLoop instead (drop"
                " loop_factory, or uvloop.install(), to silence this)",
                library,
                name,
            )
            return loop, None
    logger.error(
        "ASGIToWSGI: under %s, the selector of a %s (%s) would block every greenlet of the"
        " worker: %s did not patch select. ASGIToWSGI polls it instead, sleeping the loop's"
        " greenlet between polls (up to 10 ms of latency, a little CPU while idle);"
        " monkeypatch select too to silence this",
        library,
        type(loop).__name__,
        type(getattr(loop, "_selector", None)).__name__,
        library,
    )
    return loop, _green_sleep(library)
