"""Shared plumbing for the bench scripts: timing, reports, machine info, subprocess cases.

Every script measures its adapters *interleaved* (round-robin, the order rotated each
round so no adapter always runs first or last) and reports the median of the rounds
together with the spread (min..max), which is the noise band of that figure.

A script produces a ``Report``: rows (a figure for one adapter in one case) and ratios
(bridgeway against a peer, with its target). ``Report.print()`` writes the human table;
``--json PATH`` writes the same data for ``bench/run_all.py`` (the report, its plots and
its verdict per numbered target of issue 14).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# The ASGI and WSGI shapes the suites drive (plain aliases: peers disagree on the
# precise types).
Message = dict[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

MIB = 1024 * 1024
CHUNK = 64 * 1024
SLOW_UPLOAD = "upload, slow consumer"
SLOW_DOWNLOAD = "download, slow consumer"
SLOW_MIB_S = 128  # the slow consumer's pace: 64 KiB every 0.5 ms
MIN_STREAM_MIB_S = 16  # a stream case slower than this is given up (see stream_timeout)
PACKAGES = (
    "bridgeway",
    "a2wsgi",
    "asgiref",
    "uvicorn",
    "flask",
    "fastapi",
    "starlette",
    "anyio",
)


# ------------------------------------------------------------------------- machine


def machine_info() -> dict[str, str]:
    """What the numbers were measured on."""
    info = {
        "cpus": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }
    for name in PACKAGES:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    info["bridgeway commit"] = commit
    return info


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB. On Linux ``VmHWM``:
    ``ru_maxrss`` carries the parent's peak across fork+exec, which would hide growth."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (MIB if sys.platform == "darwin" else 1024)


# ------------------------------------------------------------------------- timing


def interleave(rounds: int, cases: Mapping[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run each case once per round, round-robin, rotating the order every round.

    Each case returns one measurement (for example µs per request over a batch)."""
    names = list(cases)
    results: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(cases[name]())
    return results


def timed(batch: Callable[[], int]) -> float:
    """µs per item of one call of ``batch`` (which returns how many items it did)."""
    start = time.perf_counter()
    count = batch()
    return (time.perf_counter() - start) * 1e6 / count


class Pacer:
    """The pace of a slow consumer: at most ``mib_s`` MiB/s on average.

    ``delay(n)`` says how long to wait (the caller sleeps: ``time.sleep`` or
    ``asyncio.sleep``) before taking ``n`` more bytes. Each take is due ``n / rate`` after
    the previous one was due, so a sleep that overshoots (asyncio's timers round up to
    1 ms) is made good by the next takes; but never earlier than ``SLACK`` before now, so a
    consumer kept waiting by its producer gains at most that much credit (256 KiB at
    128 MiB/s) to catch up with."""

    SLACK = 0.002
    __slots__ = ("due", "rate")

    def __init__(self, mib_s: float = SLOW_MIB_S) -> None:
        self.rate = mib_s * MIB
        self.due = 0.0

    def delay(self, n: int) -> float:
        now = time.perf_counter()
        self.due = max(self.due + n / self.rate, now - self.SLACK)
        return self.due - now


# ------------------------------------------------------------------------- report


@dataclass
class Row:
    section: str  # e.g. "hello, sequential"
    adapter: str
    median: float
    low: float
    high: float
    unit: str  # "µs/req", "MiB/s", "MiB"
    note: str = ""


@dataclass
class Ratio:
    section: str
    name: str  # e.g. "bridgeway/a2wsgi"
    value: float
    op: str  # "<=", "<", ">=" or ">"
    target: float
    goal: str = ""  # the issue-14 target it belongs to ("1".."7"), "" for none
    informational: bool = False  # shown, but no target of bridgeway's
    num: str = ""  # the adapters compared (rows of ``section``), when it is a ratio
    den: str = ""

    @property
    def passed(self) -> bool:
        if self.op == "<=":
            return self.value <= self.target
        if self.op == "<":
            return self.value < self.target
        if self.op == ">":
            return self.value > self.target
        return self.value >= self.target


@dataclass
class Report:
    title: str
    rows: list[Row] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def add(self, section: str, adapter: str, samples: Sequence[float], unit: str) -> Row:
        row = Row(section, adapter, statistics.median(samples), min(samples), max(samples), unit)
        self.rows.append(row)
        return row

    def get(self, section: str, adapter: str) -> Row | None:
        for row in self.rows:
            if row.section == section and row.adapter == adapter:
                return row
        return None

    def ratio(
        self,
        section: str,
        num: str,
        den: str,
        op: str,
        target: float,
        *,
        label: str = "",
        goal: str = "",
        informational: bool = False,
    ) -> Ratio | None:
        """``num``'s median over ``den``'s in ``section`` against ``target``. ``goal``
        ties it to a numbered target of the issue (run_all gives one verdict per goal,
        from its checks that are not ``informational``)."""
        a, b = self.get(section, num), self.get(section, den)
        if a is None or b is None or b.median == 0:
            return None
        name = label or f"{num}/{den}"
        if informational and "informational" not in name:
            name += " (informational)"
        ratio = Ratio(section, name, a.median / b.median, op, target, goal, informational, num, den)
        self.ratios.append(ratio)
        return ratio

    def limit(
        self, section: str, adapter: str, op: str, target: float, *, goal: str = ""
    ) -> Ratio | None:
        """A check of an absolute figure (the worst round) against a target."""
        row = self.get(section, adapter)
        if row is None:
            return None
        worst = row.high if op in ("<", "<=") else row.low
        check = Ratio(section, f"{adapter} worst", worst, op, target, goal, num=adapter)
        self.ratios.append(check)
        return check

    def print(self) -> None:
        print(f"\n== {self.title}")
        section = None
        for row in self.rows:
            if row.section != section:
                section = row.section
                print(f"-- {section}")
            spread = f"[{row.low:.1f} .. {row.high:.1f}]"
            note = f"  ({row.note})" if row.note else ""
            print(f"   {row.adapter:<22} {row.median:>10.1f} {row.unit:<7} {spread}{note}")
        for ratio in self.ratios:
            print(ratio_line(ratio))
        for note in self.notes:
            print(f"note: {note}")

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "rows": [asdict(row) for row in self.rows],
            "ratios": [dict(asdict(r), passed=r.passed) for r in self.ratios],
            "notes": self.notes,
            "settings": self.settings,
            "machine": machine_info(),
        }

    def dump(self, path: str | None) -> None:
        if path:
            Path(path).write_text(json.dumps(self.to_json(), indent=2), encoding="utf-8")


def ratio_line(ratio: Ratio) -> str:
    kind = "ratio" if "/" in ratio.name else "check"
    if ratio.informational:
        return (
            f"{kind} {ratio.section}: {ratio.name} = {ratio.value:.3f}"
            f"  ({ratio.op} {ratio.target:g}: {'yes' if ratio.passed else 'no'})"
        )
    verdict = "PASS" if ratio.passed else "FAIL"
    goal = f" [target {ratio.goal}]" if ratio.goal else ""
    return (
        f"{kind} {ratio.section}: {ratio.name} = {ratio.value:.3f}"
        f"  (target {ratio.op} {ratio.target:g}: {verdict}){goal}"
    )


# ------------------------------------------------------------------------- arguments


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (median taken)")
    parser.add_argument("--requests", type=int, help="requests per adapter per round")
    parser.add_argument("--size-mib", type=int, help="body size of the streaming cases")
    parser.add_argument("--only", choices=("requests", "streams"), help="run one part")
    parser.add_argument("--child", nargs=3, metavar=("ADAPTER", "DIRECTION", "MIB"), help=None)
    return parser


# ------------------------------------------------------------------------- streams


def stream_timeout(size_mib: int) -> float:
    """Seconds a stream case may take: it is given up below ``MIN_STREAM_MIB_S`` (every
    adapter does hundreds of MiB/s; Starlette's middleware, which grows the request body
    with ``bytes +=``, is quadratic in the upload's size and would take minutes)."""
    return max(10.0, size_mib / MIN_STREAM_MIB_S)


def run_child(
    module: str, adapter: str, direction: str, size_mib: int, timeout: float = 600.0
) -> dict[str, Any]:
    """Run one streaming case in a fresh interpreter (``python -m module --child ...``)
    so that its peak RSS is its own. The child prints one JSON line last; a failure
    gives ``{"error": "<last line of stderr>"}``, a child still running after
    ``timeout`` seconds is killed and gives ``{"error": "gave up after ..."}``."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", module, "--child", adapter, direction, str(size_mib)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {
            "error": f"gave up after {timeout:g} s (under {size_mib / timeout:.1f} MiB/s)",
        }
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return {"error": tail}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def child_result(seconds: float, size: int, rss_before: float) -> str:
    """What a child prints: throughput and peak RSS growth."""
    return json.dumps(
        {
            "mib_s": size / MIB / seconds,
            "rss_growth_mib": max(0.0, peak_rss_mib() - rss_before),
        }
    )


def stream_rounds(
    report: Report,
    module: str,
    adapters: Sequence[str],
    directions: Sequence[str],
    size_mib: int,
    rounds: int,
) -> None:
    """Interleave child runs of every (direction, adapter); add MiB/s and RSS rows.

    A case that fails (or is given up, see ``stream_timeout``) is not run again in later
    rounds; it gets a note instead of rows."""
    timeout = stream_timeout(size_mib)
    for direction in directions:
        speed: dict[str, list[float]] = {a: [] for a in adapters}
        rss: dict[str, list[float]] = {a: [] for a in adapters}
        failed: dict[str, str] = {}

        def case(
            adapter: str,
            direction: str = direction,
            speed: dict[str, list[float]] = speed,
            rss: dict[str, list[float]] = rss,
            failed: dict[str, str] = failed,
        ) -> Callable[[], float]:
            def run() -> float:
                if adapter in failed:
                    return 0.0
                result = run_child(module, adapter, direction, size_mib, timeout)
                if "error" in result:
                    failed[adapter] = str(result["error"])
                    return 0.0
                speed[adapter].append(float(result["mib_s"]))
                rss[adapter].append(float(result["rss_growth_mib"]))
                return float(result["mib_s"])

            return run

        interleave(rounds, {a: case(a) for a in adapters})
        section = f"{direction} {size_mib} MiB"
        for adapter in adapters:
            if speed[adapter]:
                report.add(section, adapter, speed[adapter], "MiB/s")
        for adapter in adapters:
            if rss[adapter]:
                row = report.add(f"{section}, peak RSS growth", adapter, rss[adapter], "MiB")
                row.note = f"max {max(rss[adapter]):.1f}"
        for adapter, error in failed.items():
            report.notes.append(f"{section}: {adapter} failed: {error}")


# ------------------------------------------------------------------------- suites


@dataclass
class SuiteSettings:
    """What every in-process suite's command line decides."""

    rounds: int
    requests: int
    size_mib: int
    stream_rounds: int
    slow_rounds: int
    only: str | None


def suite_settings(args: argparse.Namespace, quick_requests: int, requests: int) -> SuiteSettings:
    return SuiteSettings(
        rounds=args.rounds or (3 if args.quick else 7),
        requests=args.requests or (quick_requests if args.quick else requests),
        size_mib=args.size_mib or (16 if args.quick else 256),
        stream_rounds=1 if args.quick else 3,
        slow_rounds=1 if args.quick else 2,
        only=args.only,
    )


def stream_settings(settings: SuiteSettings) -> dict[str, object]:
    return {
        "stream size MiB": settings.size_mib,
        "stream rounds": settings.stream_rounds,
        "slow consumer MiB/s": SLOW_MIB_S,
        "slow consumer stream rounds": settings.slow_rounds,
    }


def run_streams(
    report: Report,
    module: str,
    adapters: Sequence[str],
    settings: SuiteSettings,
    min_ratio: float,
    slow_note: str,
) -> None:
    """The large-body cases of a suite: fast up and down (throughput at least
    ``min_ratio`` x a2wsgi's), then with a slow consumer; bridgeway's peak RSS growth
    stays under 32 MiB in all four."""
    size_mib = settings.size_mib
    stream_rounds(
        report, module, adapters, ("upload", "download"), size_mib, settings.stream_rounds
    )
    stream_rounds(
        report, module, adapters, (SLOW_UPLOAD, SLOW_DOWNLOAD), size_mib, settings.slow_rounds
    )
    for direction in ("upload", "download"):
        section = f"{direction} {size_mib} MiB"
        report.ratio(section, "bridgeway", "a2wsgi", ">=", min_ratio, goal="7")
        report.limit(f"{section}, peak RSS growth", "bridgeway", "<", 32.0, goal="7")
    for direction in (SLOW_UPLOAD, SLOW_DOWNLOAD):
        report.limit(
            f"{direction} {size_mib} MiB, peak RSS growth", "bridgeway", "<", 32.0, goal="7"
        )
    report.notes.append(
        f"slow consumer: the body is taken at {SLOW_MIB_S} MiB/s ({slow_note} sleep), so"
        " MiB/s is bounded by that pace; the figure to read is the peak RSS growth: an"
        " adapter without backpressure holds the whole body."
    )


@dataclass(frozen=True)
class Suite:
    """An in-process suite, for ``suite_main``: what differs between the two directions."""

    title: str
    module: str
    stream_adapters: Sequence[str]
    child: Callable[[str, str, int], None]  # (adapter, direction, size MiB), in a subprocess
    run_requests: Callable[[Report, int, int], None]  # (report, rounds, requests)
    settings: Mapping[str, object]  # shown in the report besides the common ones
    quick_requests: int
    requests: int
    min_stream_ratio: float  # the fast large-body cases, x a2wsgi
    slow_note: str  # what sleeps in the slow-consumer cases
    stream_notes: Sequence[str] = ()


def suite_main(suite: Suite, doc: str, argv: list[str] | None) -> int:
    """The command line of an in-process suite: a child stream case, or the whole run."""
    args = base_parser(doc).parse_args(argv)
    if args.child:
        suite.child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    settings = suite_settings(args, suite.quick_requests, suite.requests)
    report = Report(suite.title)
    report.settings = {
        "rounds": settings.rounds,
        "requests per round": settings.requests,
        **suite.settings,
        **stream_settings(settings),
    }
    if settings.only in (None, "requests"):
        suite.run_requests(report, settings.rounds, settings.requests)
    if settings.only in (None, "streams"):
        run_streams(
            report,
            suite.module,
            suite.stream_adapters,
            settings,
            suite.min_stream_ratio,
            suite.slow_note,
        )
        report.notes.extend(suite.stream_notes)
    report.print()
    report.dump(args.json)
    return 0
