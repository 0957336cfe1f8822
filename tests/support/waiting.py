"""Polling for a condition another thread or process makes true, always with a deadline
(the house rule: no bare sleep as synchronisation, every wait has a timeout)."""

from __future__ import annotations

import time
from collections.abc import Callable

TIMEOUT = 10.0


def wait_until(
    check: Callable[[], bool], timeout: float = TIMEOUT, what: str = "the condition"
) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)  # polling interval, bounded by the deadline
