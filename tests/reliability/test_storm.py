"""Disconnect storms: 2,000 requests, 30% of the clients leave mid-upload or
mid-download, through each adapter under two real servers. Afterwards the server's
threads, fds and asyncio tasks are back to their baseline, every WSGI iterable was
closed exactly once, every app call finished, and peak RSS grew by a bounded amount."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.live.servers import running_server
from tests.reliability.results import record
from tests.reliability.storm import (
    Sampler,
    debug,
    pool_thread,
    process_figures,
    run_storm,
    wait_settled,
)

TOTAL = 2000
DROP_RATIO = 0.3
RSS_GROWTH_LIMIT = 64 * 1024 * 1024
WARMUP = 1000
# asyncio's default executor: min(32, cpu_count + 4) threads; 32 bounds it anywhere.
EXECUTOR_MAX = 32
FDS_PER_LOOP = 4  # epoll, the self-pipe pair, and one spare

CASES = [
    pytest.param("uvicorn-h11", "tests.reliability.probe_apps:w2a", id="w2a-uvicorn"),
    pytest.param("hypercorn-asyncio", "tests.reliability.probe_apps:w2a", id="w2a-hypercorn"),
    pytest.param("gunicorn-gthread", "tests.reliability.probe_apps:a2w", id="a2w-gunicorn"),
    pytest.param("waitress", "tests.reliability.probe_apps:a2w", id="a2w-waitress"),
]


def _in_flight(figures: dict[str, Any]) -> int:
    counters = figures["counters"]
    return int(counters["calls_started"] - counters["calls_finished"])


def _other_threads(figures: dict[str, Any]) -> int:
    return sum(not pool_thread(name) for name in figures["thread_names"])


def leaks_of(baseline: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """What did not come back. ASGIToWSGI's loop pool grows to the peak number of loops
    in use (a loop handed to the disconnect grace or a background driver is replaced),
    and each loop keeps its default executor (at most ``EXECUTOR_MAX`` threads) and its
    lifespan task; that growth is bounded and counted separately, not as a leak."""
    counters = after["counters"]
    result = {
        "unfinished_calls": max(0, _in_flight(after) - baseline["in_flight"]),
        "unclosed_iterables": counters["iterables_made"] - counters["iterables_closed"],
        "closed_twice": counters["closed_twice"],
        "threads": max(0, _other_threads(after) - _other_threads(baseline)),
    }
    if "loops_created" in after:  # ASGIToWSGI
        new_loops = after["loops_created"] - baseline["loops_created"]
        executor = sum(name.startswith("asyncio") for name in after["thread_names"])
        result["executor_threads_over_bound"] = max(
            0, executor - EXECUTOR_MAX * after["loops_created"]
        )
        result["tasks"] = max(0, after["request_tasks"] - baseline["request_tasks"])
        result["fds"] = max(0, after["fds"] - baseline["fds"] - FDS_PER_LOOP * new_loops)
    else:  # WSGIToASGI
        result["pool_busy"] = after["pool_busy"]
        result["pool_threads"] = max(0, after["pool_threads"] - baseline["pool_threads"])
        result["tasks"] = max(0, after["tasks"] - baseline["tasks"])
        result["fds"] = max(0, after["fds"] - baseline["fds"])
    return result


@pytest.mark.servers
@pytest.mark.timeout(90)
@pytest.mark.parametrize(("server", "app"), CASES)
def test_disconnect_storm(server: str, app: str) -> None:
    with running_server(server, app, ready_path="/debug") as srv:
        pid = int(debug(srv.port)["pid"])
        # Warm up with the same mix and concurrency, so pools and loops reach the size
        # the storm needs; then take the baseline once things are quiet.
        run_storm(srv.port, total=WARMUP, seed=1)
        time.sleep(0.5)
        first = debug(srv.port)
        baseline = {**first, **process_figures(pid), "in_flight": _in_flight(first)}
        with Sampler(pid) as sampler:
            result = run_storm(srv.port, total=TOTAL, drop_ratio=DROP_RATIO)
        settle_started = time.monotonic()
        after = wait_settled(srv.port, pid, lambda figures: leaks_of(baseline, figures))
        settle_seconds = time.monotonic() - settle_started
        leaks = leaks_of(baseline, after)
        counters, base_counters = after["counters"], baseline["counters"]

        def grew(name: str) -> int:
            return int(counters[name] - base_counters[name])

        rss_growth = sampler.peak("rss") - baseline["rss"]
        keys = ("threads", "fds", "tasks", "rss")
        figures = {
            "server": server,
            "adapter": "WSGIToASGI" if app.endswith(":w2a") else "ASGIToWSGI",
            "requests": result.total,
            "drops": result.drops,
            "kinds": dict(result.kinds),
            "client_failures": result.failures[:20],
            "seconds": round(result.seconds, 2),
            "settle_seconds": round(settle_seconds, 2),
            "baseline": {k: baseline[k] for k in keys},
            "after": {k: after[k] for k in keys},
            "thread_names_after": after["thread_names"],
            "peak_threads": sampler.peak("threads"),
            "peak_fds": sampler.peak("fds"),
            "rss_peak_growth": rss_growth,
            "iterables_made": grew("iterables_made"),
            "iterables_closed": grew("iterables_closed"),
            "closed_twice": counters["closed_twice"],
            "calls_started": grew("calls_started"),
            "calls_finished": grew("calls_finished"),
            "upload_aborted": grew("upload_aborted"),
            "download_aborted": grew("download_aborted"),
            "loops_created": [baseline.get("loops_created"), after.get("loops_created")],
            "pool_threads": after.get("pool_threads"),
            "leaks": leaks,
        }
        record("storm", f"{figures['adapter']}-{server}", figures)
    assert not result.failures, result.failures[:10]
    assert leaks == dict.fromkeys(leaks, 0), figures
    assert result.drops >= TOTAL * DROP_RATIO * 0.8
    assert rss_growth < RSS_GROWTH_LIMIT, figures
