"""How a lifespan step ended (ASGI-life §Startup, §Shutdown), one type for both drivers:
``_a2w.lifespan`` (ASGIToWSGI: one app's lifespan per event loop) and ``_mix.fanout`` (the
ASGI dispatcher: a server's lifespan fanned out to every mount).

The values are the last word of the app's answer where there is one
(``lifespan.startup.complete`` gives COMPLETE), so a driver can take an answer as
``LifespanOutcome(kind.rsplit(".", 1)[1])``.
"""

from __future__ import annotations

from enum import Enum


class LifespanOutcome(Enum):
    PENDING = "pending"  # not run yet, or no answer yet
    OFF = "off"  # not run: the adapter was told lifespan="off"
    COMPLETE = "complete"  # lifespan.startup.complete / lifespan.shutdown.complete
    FAILED = "failed"  # .failed, or no answer within the time-out (or a raise, in "on" mode)
    # The app raised or returned without answering startup, or spoke another protocol
    # on the lifespan scope: it does not support lifespan and is served without
    # (uvicorn's --lifespan auto; A2W-LIFE-06).
    UNSUPPORTED = "unsupported"

    # Compared by identity: hashed by identity too, in C (as _a2w.states.State).
    __hash__ = object.__hash__


PENDING, OFF, COMPLETE, FAILED, UNSUPPORTED = LifespanOutcome
