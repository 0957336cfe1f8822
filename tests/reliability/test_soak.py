"""Soak: sustained load through both adapters at once (WSGIToASGI under uvicorn,
ASGIToWSGI under gunicorn gthread) for ``$BRIDGEWAY_SOAK_SECONDS`` (default 300),
sampling each server's RSS and thread count every second. The RSS slope over the last
four minutes (the last 80% for shorter runs) must be within noise; the thread count must
stay under the bound its pools allow (its slope is reported: ASGIToWSGI's loop
executors keep growing slowly towards their size under a load with disconnects).

Not in the default run (``-m 'not soak'`` in addopts); run it with
``python -m tests.reliability.report --soak``.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from typing import Any

import pytest

from tests.live.servers import SERVERS, running_servers
from tests.reliability.results import record
from tests.reliability.storm import debug, one_request, process_figures

SOAK_SECONDS = float(os.environ.get("BRIDGEWAY_SOAK_SECONDS", "300"))
CLIENTS_PER_SERVER = 3
DROP_RATIO = 0.1
TARGETS = [
    ("WSGIToASGI", "uvicorn-h11", "tests.reliability.probe_apps:w2a"),
    ("ASGIToWSGI", "gunicorn-gthread", "tests.reliability.probe_apps:a2w"),
]


def slope(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope (per second) and the residuals' standard deviation."""
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    residuals = [y - (my + b * (x - mx)) for x, y in points]
    return b, statistics.pstdev(residuals) if len(residuals) > 1 else 0.0


def analyse(samples: list[tuple[float, int, int]], duration: float) -> dict[str, Any]:
    window = 240.0 if duration >= 300 else duration * 0.8
    tail = [s for s in samples if s[0] >= duration - window]
    mib = 1024 * 1024
    rss_slope, rss_noise = slope([(t, rss / mib) for t, rss, _ in tail])
    thr_slope, thr_noise = slope([(t, float(n)) for t, _, n in tail])
    rss_drift = rss_slope * window
    # Within noise: the drift over the window is no larger than three residual standard
    # deviations, or than 2 MiB (allocator arenas come and go in steps of that order).
    rss_ok = abs(rss_drift) <= max(3 * rss_noise, 2.0)
    thr_drift = thr_slope * window
    thr_ok = abs(thr_drift) <= max(3 * thr_noise, 1.0)
    rss_values = [rss / mib for _, rss, _ in samples]
    return {
        "window_seconds": round(window, 1),
        "samples": len(samples),
        "rss_start_mib": round(rss_values[0], 2) if rss_values else None,
        "rss_end_mib": round(rss_values[-1], 2) if rss_values else None,
        "rss_peak_mib": round(max(rss_values), 2) if rss_values else None,
        "rss_slope_mib_per_min": round(rss_slope * 60, 4),
        "rss_drift_mib": round(rss_drift, 3),
        "rss_noise_mib": round(rss_noise, 3),
        "rss_within_noise": rss_ok,
        "threads_min": min((n for _, _, n in samples), default=0),
        "threads_max": max((n for _, _, n in samples), default=0),
        "threads_slope_per_min": round(thr_slope * 60, 4),
        "threads_within_noise": thr_ok,
    }


def thread_bound(figures: dict[str, Any]) -> int:
    """The most threads the server may run: the server's own (a few, plus gunicorn's 4
    workers), WSGIToASGI's pool (8 in the probe), and for ASGIToWSGI each loop's
    default executor (asyncio: min(32, cpus + 4) threads, for blocking body reads)."""
    own = 10
    if "loops_created" in figures:
        executor = min(32, (os.cpu_count() or 1) + 4)
        return own + int(figures["loops_created"]) * executor
    return own + int(figures["pool_threads"])


@pytest.mark.soak
@pytest.mark.servers
@pytest.mark.timeout(int(SOAK_SECONDS) + 120)
def test_soak() -> None:
    launches = [(SERVERS[server], app) for _, server, app in TARGETS]
    with running_servers(launches, ready_path="/debug") as servers:
        pids = [int(debug(srv.port)["pid"]) for srv in servers]
        deadline = time.monotonic() + SOAK_SECONDS
        counts = [[0, 0, 0] for _ in servers]  # requests, drops, failures
        lock = threading.Lock()

        def client(index: int, seed: int) -> None:
            rng = random.Random(seed)
            port = servers[index].port
            while time.monotonic() < deadline:
                if rng.random() < DROP_RATIO:
                    kind = rng.choice(("drop-upload", "drop-download"))
                else:
                    kind = rng.choice(("upload", "download"))
                try:
                    failure = one_request(port, kind, rng)
                except (OSError, AssertionError, ValueError) as exc:
                    failure = repr(exc)
                with lock:
                    counts[index][0] += 1
                    counts[index][1] += kind.startswith("drop")
                    counts[index][2] += failure is not None

        threads = [
            threading.Thread(target=client, args=(i, 1000 * i + j), daemon=True)
            for i in range(len(servers))
            for j in range(CLIENTS_PER_SERVER)
        ]
        samples: list[list[tuple[float, int, int]]] = [[] for _ in servers]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        while time.monotonic() < deadline:
            now = time.monotonic() - started
            for i, pid in enumerate(pids):
                figures = process_figures(pid)
                samples[i].append((now, figures["rss"], figures["threads"]))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started - now)))
        for thread in threads:
            thread.join(timeout=30.0)
        final = [debug(srv.port) for srv in servers]
        results = {}
        for i, (adapter, server, _) in enumerate(TARGETS):
            results[adapter] = {
                "server": server,
                "thread_bound": thread_bound(final[i]),
                "loops_created": final[i].get("loops_created"),
                "requests": counts[i][0],
                "drops": counts[i][1],
                "failures": counts[i][2],
                **analyse(samples[i], SOAK_SECONDS),
            }
    record(
        "soak",
        "soak",
        {"seconds": SOAK_SECONDS, "clients_per_server": CLIENTS_PER_SERVER, "runs": results},
    )
    for adapter, figures in results.items():
        assert figures["failures"] == 0, (adapter, figures)
        assert figures["rss_within_noise"], (adapter, figures)
        # Threads may grow while pools reach their working size, never past the bound.
        assert figures["threads_max"] <= figures["thread_bound"], (adapter, figures)
