"""PNG plots of a suite's JSON report (``bench/results/<suite>.json``), with matplotlib.

One figure per suite, one panel per section: a horizontal bar per adapter at the median
over the rounds, with the min..max over the rounds (the noise band) as its error bar,
bridgeway highlighted. ``bench.run_all`` writes them next to the report
(``<report dir>/img/bench-<suite>.png``) and links them from it.

    .venv/bin/python -m bench.plots bench/results/e2e.json out.png   # one by hand
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

COLOURS = {"bridgeway": "#d9730d", "a2wsgi": "#5b7fa6"}
REFERENCE = {
    "floor",
    "raw-wsgi",
    "gunicorn-native",
    "uvicorn-native",
    "thread round trip",
    "cross-thread round trip",
}
OTHER = "#9aa5b1"
REFERENCE_COLOUR = "#6aa36f"


def _colour(adapter: str) -> str:
    if adapter in REFERENCE:
        return REFERENCE_COLOUR
    return COLOURS.get(adapter, OTHER)


def plot_report(report: dict[str, Any], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections: dict[str, list[dict[str, Any]]] = {}
    for row in report["rows"]:
        sections.setdefault(row["section"], []).append(row)
    if not sections:
        return
    columns = 2 if len(sections) > 1 else 1
    lines = math.ceil(len(sections) / columns)
    fig, axes = plt.subplots(
        lines, columns, figsize=(6.2 * columns, 0.55 + 2.1 * lines), squeeze=False
    )
    for ax, (section, rows) in zip(axes.flat, sections.items(), strict=False):
        names = [row["adapter"] for row in rows][::-1]
        medians = [row["median"] for row in rows][::-1]
        below = [row["median"] - row["low"] for row in rows][::-1]
        above = [row["high"] - row["median"] for row in rows][::-1]
        ax.barh(
            names,
            medians,
            xerr=[below, above],
            color=[_colour(name) for name in names],
            error_kw={"elinewidth": 1, "capsize": 3, "ecolor": "#333333"},
        )
        top = max((row["high"] for row in rows), default=0.0) or 1.0
        for y, (value, high) in enumerate(
            zip(medians, [r["high"] for r in rows][::-1], strict=True)
        ):
            ax.text(high + top * 0.02, y, f"{value:,.1f}", va="center", fontsize=8)
        ax.set_xlim(0, top * 1.25)
        ax.set_title(f"{section} ({rows[0]['unit']})", fontsize=10)
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(sections) :]:
        ax.set_visible(False)
    fig.suptitle(f"{title}: median of rounds, bar = min..max", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m bench.plots REPORT.json OUT.png", file=sys.stderr)
        return 2
    report = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    plot_report(report, str(report.get("title", "")), Path(args[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
