"""Profile bridgeway.WSGIToASGI's hot path for the hello app with cProfile.

Run from the repository root: ``.venv/bin/python -m bench.profile_w2a [--requests N]``.

cProfile sees only the thread it was enabled in, so the loop side (the request task) and
the worker-thread side (the WSGI app, ``start_response``, the mailbox post) are profiled
separately. Times are µs per request, own time (``tottime``) first; cProfile inflates
small functions, so read the shares rather than the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import threading
import time
from typing import Any

from bench.w2a_inprocess import concurrent, hello_app, make_adapter, sequential


def top(profile: cProfile.Profile, requests: int, limit: int, title: str) -> None:
    stats = pstats.Stats(profile)
    rows: list[tuple[float, float, int, str]] = []
    raw: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    for (path, line, name), (_cc, calls, tottime, cumtime, _callers) in raw.items():
        short = path.split("/site-packages/")[-1].split("/main/")[-1]
        rows.append((tottime, cumtime, calls, f"{short}:{line}({name})"))
    rows.sort(reverse=True)
    print(f"\n-- {title}: top {limit} by own time, µs per request")
    print(f"{'own':>8} {'cum':>8} {'calls/req':>9}  function")
    for tottime, cumtime, calls, where in rows[:limit]:
        print(
            f"{tottime * 1e6 / requests:8.2f} {cumtime * 1e6 / requests:8.2f}"
            f" {calls / requests:9.2f}  {where}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--limit", type=int, default=25)
    parser.add_argument("--concurrent", action="store_true", help="64 at a time")
    args = parser.parse_args(argv)
    drive = concurrent if args.concurrent else sequential
    loop = asyncio.new_event_loop()

    plain_app = make_adapter("bridgeway", hello_app)
    loop.run_until_complete(drive(plain_app, 1000))  # warm up: threads, caches
    start = time.perf_counter()
    count = loop.run_until_complete(drive(plain_app, args.requests))
    plain = (time.perf_counter() - start) * 1e6 / count
    print(f"unprofiled: {plain:.1f} µs/request over {count} requests")

    # cProfile sees one thread: the loop thread gets one profile, the first worker thread
    # of a fresh adapter (sequential requests all run on it) another, enabled from inside
    # that thread by a one-shot hook installed before the thread exists.
    loop_profile = cProfile.Profile()
    thread_profile = cProfile.Profile()
    claimed = threading.Lock()

    def hook(frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        if claimed.acquire(blocking=False):
            thread_profile.enable()

    threading.setprofile(hook)
    app = make_adapter("bridgeway", hello_app)
    loop_profile.enable()
    count = loop.run_until_complete(drive(app, args.requests))
    loop_profile.disable()
    threading.setprofile(None)
    top(loop_profile, count, args.limit, "event loop thread (the request task)")
    top(thread_profile, count, args.limit, "first worker thread (the WSGI side)")
    if args.concurrent:
        print("\n(concurrent: the worker-thread profile covers one thread of several)")
    loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
