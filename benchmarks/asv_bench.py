"""asv suite: the ADVI-overhead fit times and their ratios, tracked per commit.

The same fits as the pytest-benchmark suite (``benchmarks/advi_fits.py``) on
``ppca[n=500]`` with default ADVI: seconds per fit with compilation excluded, and the
ratios of :data:`benchmarks.ratios.RATIOS` timed in one process (less sensitive to
the machine than the seconds are).
"""

from __future__ import annotations

import time
from functools import cache

from benchmarks.advi_fits import BENCHMARK, BUILDERS, Fit, Problem, build_problem
from benchmarks.ratios import RATIOS, fit_time_ratios

RATIO_ROUNDS = 5


@cache
def _problem() -> Problem:
    return build_problem(BENCHMARK)


@cache
def _fit(name: str) -> Fit:
    """Built (and compiled) once per process: asv re-runs ``setup`` before every sample."""
    return BUILDERS[name](_problem())


def _seconds(fit: Fit) -> float:
    start = time.perf_counter()
    fit.run()
    return time.perf_counter() - start


class FitTime:
    """Seconds per fit of ppca[n=500] with default ADVI, compilation excluded."""

    params = list(BUILDERS)
    param_names = ["fit"]
    number = 1
    repeat = (3, 7, 60.0)
    warmup_time = 0.1  # one warm-up call: every fit takes longer than this
    timeout = 600.0

    def setup(self, fit: str) -> None:
        self.fit = _fit(fit)

    def time_fit(self, fit: str) -> None:
        self.fit.run()


class FitTimeRatio:
    """Fit-time ratios, each the ratio of the two fits' fastest of
    :data:`RATIO_ROUNDS` interleaved runs (after one warm-up run each)."""

    params = list(RATIOS)
    param_names = ["ratio"]
    unit = "ratio"
    timeout = 900.0

    def setup(self, ratio: str) -> None:
        self.fits = {name: _fit(name) for name in RATIOS[ratio]}
        for fit in self.fits.values():
            fit.run()

    def track_ratio(self, ratio: str) -> float:
        runs = [
            {name: _seconds(fit) for name, fit in self.fits.items()} for _ in range(RATIO_ROUNDS)
        ]
        fastest = {name: min(run[name] for run in runs) for name in self.fits}
        return fit_time_ratios(fastest)[ratio]


ACCURACY_TASKS = ("linreg", "ppca[n=100]")
ACCURACY_SEEDS = 3


@cache
def _accuracy(task: str) -> dict[str, float]:
    """Mean over :data:`ACCURACY_SEEDS` seeds of default ADVI's ELBO gap and k-hat on
    ``task``, run through the harness (one run per process: asv calls each track once)."""
    import numpy as np

    from vibench.harness import environment
    from vibench.harness.runner import run_pair
    from vibench.registry import discover

    registry = discover()
    outcomes = run_pair(registry.task(task), registry.method("advi"), list(range(ACCURACY_SEEDS)),
                        environment.resolve_device(None))
    values: dict[str, list[float]] = {}
    for outcome in outcomes:
        got = {row["metric"]: row["value"] for row in outcome.rows}
        values.setdefault("elbo_gap", []).append(got["log_px"] - got["elbo"])
        values.setdefault("khat", []).append(got["khat"])
    return {name: float(np.mean(v)) for name, v in values.items()}


class Accuracy:
    """Default ADVI's accuracy per commit, beside the fit times: ``asv publish`` plots
    its history (mean over seeds 0..2, the same numbers every run of one commit)."""

    params = list(ACCURACY_TASKS)
    param_names = ["task"]
    timeout = 600.0

    def track_elbo_gap(self, task: str) -> float:
        return _accuracy(task)["elbo_gap"]

    track_elbo_gap.unit = "nats"

    def track_khat(self, task: str) -> float:
        return _accuracy(task)["khat"]

    track_khat.unit = "k-hat"
