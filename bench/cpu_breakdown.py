"""Per-thread CPU of WSGIToASGI's in-process requests, µs per request (issue 14: where
the time over the thread round trip goes).

Run from the repository root:
``.venv/bin/python -m bench.cpu_breakdown [--requests N] [--rounds N] [--concurrent]``.

Each case (``APP:ADAPTER``; ``rt`` is the bench's thread round trip) runs
``--requests`` requests per round, cases interleaved, and reads every thread's
``/proc/self/task/<tid>/schedstat`` (CPU time, run-queue wait, timeslices) and
``status`` (voluntary context switches) before and after: the loop thread apart, the
worker threads summed. Medians over rounds. CPU time is far steadier than wall time on
a shared machine; run-queue wait shows the other load. Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import threading
import time
from typing import Any

from bench import w2a_inprocess as w2a

DEFAULT_CASES = (
    "hello:floor",
    "hello:rt",
    "hello:bridgeway",
    "flask:floor",
    "flask:bridgeway",
    "flask:a2wsgi",
    "flask:uvicorn-wsgi",
)
FIELDS = ("cpu", "rq wait", "slices", "vol")


def snapshot() -> dict[int, tuple[int, int, int, int]]:
    """tid -> (CPU ns, run-queue wait ns, timeslices, voluntary context switches)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                run, wait, slices = map(int, f.read().split())
            with open(f"/proc/self/task/{tid}/status") as f:
                vol = next(int(x.split()[1]) for x in f if x.startswith("voluntary_ctxt"))
        except (FileNotFoundError, StopIteration):
            continue  # a thread that ended in between
        out[int(tid)] = (run, wait, slices, vol)
    return out


def split(before: dict[int, Any], after: dict[int, Any], loop_tid: int, n: int) -> list[float]:
    """Per request: loop thread's four figures, then the other threads' summed."""
    rows = [0.0] * 8
    for tid, now in after.items():
        then = before.get(tid, (0, 0, 0, 0))
        base = 0 if tid == loop_tid else 4
        for i in range(4):
            rows[base + i] += (now[i] - then[i]) / n
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cases", nargs="*", default=DEFAULT_CASES)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrent", action="store_true", help="64 at a time")
    args = parser.parse_args(argv)
    drive = w2a.concurrent if args.concurrent else w2a.sequential
    loop = asyncio.new_event_loop()
    flask = w2a.flask_app()
    apps: dict[str, Any] = {}
    for case in args.cases:
        app_name, adapter = case.split(":", 1)
        wsgi = w2a.hello_app if app_name == "hello" else flask
        apps[case] = w2a.ThreadRoundTrip() if adapter == "rt" else w2a.make_adapter(adapter, wsgi)
    loop_tid = threading.get_native_id()
    results: dict[str, list[tuple[float, list[float]]]] = {case: [] for case in apps}
    for index in range(args.rounds + 1):  # round 0 warms up
        order = list(apps)[index % len(apps) :] + list(apps)[: index % len(apps)]
        for case in order:
            gc.collect()
            before = snapshot()
            start = time.perf_counter()
            count = loop.run_until_complete(drive(apps[case], args.requests))
            wall = (time.perf_counter() - start) * 1e6 / count
            if index:
                results[case].append((wall, split(before, snapshot(), loop_tid, count)))
    head = " ".join(f"{f:>8}" for f in FIELDS)
    print(f"{'µs/request':30} {'wall':>7} | loop thread: {head} | worker threads: {head}")
    for case, rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        med = [statistics.median(r[1][i] for r in rows) for i in range(8)]
        cells = [f"{med[i] / 1e3:8.1f}" if i % 4 < 2 else f"{med[i]:8.2f}" for i in range(8)]
        print(
            f"{case:30} {wall:7.1f} |              {' '.join(cells[:4])} |"
            f"                 {' '.join(cells[4:])}"
        )
    for app in apps.values():
        if isinstance(app, w2a.ThreadRoundTrip):
            app.close()
    loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
