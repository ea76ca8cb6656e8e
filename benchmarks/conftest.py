"""pytest-benchmark plumbing: the fit-time ratios printed at the end of a benchmark run."""

from __future__ import annotations

from typing import Callable

import pytest

from benchmarks.ratios import STATISTICS, ratio_lines

FIT_STATS = pytest.StashKey[dict[str, dict[str, float]]]()


@pytest.fixture
def record_fit_stats(pytestconfig: pytest.Config) -> Callable[[str, object], None]:
    """``record(fit_name, benchmark)`` keeps an enabled benchmark's times for the ratios."""

    def record(fit_name: str, benchmark) -> None:
        if benchmark.enabled:
            stats = pytestconfig.stash.setdefault(FIT_STATS, {})
            stats[fit_name] = {statistic: benchmark.stats[statistic] for statistic in STATISTICS}

    return record


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    stats = config.stash.get(FIT_STATS, {})
    lines = ratio_lines(stats)
    if lines:
        terminalreporter.section("fit-time ratios (same run)")
        for line in lines:
            terminalreporter.write_line(line)
