"""Fit-time ratios of the ADVI-overhead benchmarks, from one run's timings.

Printed at the end of a pytest-benchmark run (``benchmarks/conftest.py``), tracked by
asv (``benchmarks/asv_bench.py``), and recomputed from a saved pytest-benchmark JSON::

    python benchmarks/ratios.py .benchmarks/.../0001_xxx.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

# label -> (numerator fit, denominator fit), fit names as in advi_fits.BUILDERS
RATIOS: dict[str, tuple[str, str]] = {
    "vibench / handwritten": ("vibench", "handwritten"),
    "svi_run / vibench": ("svi_run", "vibench"),
    "svi_run_as_called / vibench": ("svi_run_as_called", "vibench"),
}
STATISTICS = ("min", "median")


def fit_time_ratios(seconds: Mapping[str, float]) -> dict[str, float]:
    """The ratios of :data:`RATIOS` whose two fits both have a time in ``seconds``."""
    return {
        label: seconds[top] / seconds[bottom]
        for label, (top, bottom) in RATIOS.items()
        if top in seconds and bottom in seconds
    }


def ratio_lines(stats: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One line per ratio, with its value for each statistic of :data:`STATISTICS`.

    ``stats[fit][statistic]`` is a fit time in seconds.
    """
    by_statistic = {
        statistic: fit_time_ratios({fit: s[statistic] for fit, s in stats.items()})
        for statistic in STATISTICS
    }
    return [
        f"{label:<28}"
        + "  ".join(
            f"{statistic} {by_statistic[statistic][label]:6.2f}x" for statistic in STATISTICS
        )
        for label in by_statistic[STATISTICS[0]]
    ]


def stats_from_json(path: Path) -> dict[str, dict[str, float]]:
    """``stats[fit][statistic]`` from a pytest-benchmark JSON (``--benchmark-json PATH``
    or ``--benchmark-save``)."""
    report = json.loads(Path(path).read_text())
    return {
        bench["param"]: {statistic: bench["stats"][statistic] for statistic in STATISTICS}
        for bench in report["benchmarks"]
        if bench["name"].startswith("test_fit_time[")
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python benchmarks/ratios.py BENCHMARK_JSON", file=sys.stderr)
        return 2
    print("\n".join(ratio_lines(stats_from_json(Path(argv[0])))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
