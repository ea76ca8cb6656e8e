"""The rules that judge one metric of one paired entry: accuracy, speed, exact counts,
SBC verdicts and run status, each giving a :class:`Judgement`.

- Accuracy (a metric with a direction in :mod:`vibench.metrics.records`): the Welch
  standardized difference of the means over seeds, ``z = (m_new − m_base) /
  √(se_base² + se_new²)``, each standard error the standard deviation over seeds over
  √n, or with one seed the row's own (:func:`vibench.report.summary.mean_and_se`). A
  change counts only when ``|z| ≥ z`` (default 4) and ``|m_new − m_base|`` exceeds the
  metric's ``tolerance``: a tiny but certain change is ``unchanged``. A missing standard
  error (NaN) cannot be judged: ``too-few-samples``.
- Speed (``time_fit_s``, ``time_compile_s``): the ratio of the medians beyond ``factor``
  (default 1.1) either way, and a two-sided Mann–Whitney U test of the raw timings with
  ``p < alpha`` (default 0.002; asv's rule). When no outcome of the test could reach
  ``alpha`` with these sample sizes (the smallest two-sided p of samples of n₁ and n₂ is
  ``2 / C(n₁ + n₂, n₁)``: 5 against 5 gives 0.008, 7 against 7 the first below 0.002),
  a ratio beyond the factor is ``too-few-samples``. A significant change under a changed
  environment (library version, device, host) is ``drift``, not a regression.
- Exact counts (``grad_evals``): any change of the mean is a change.
- SBC (``sbc_rejected``): ``regressed`` when a run is newly rejected (none of the base
  runs was, some new one is), ``improved`` the other way round.
- Runs (``run``): ``regressed`` when some new run failed or gave NaN and no base run did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from vibench.compare import DEFAULT_ALPHA, DEFAULT_FACTOR, DEFAULT_Z
from vibench.metrics.records import HIGHER, direction, record
from vibench.report.summary import mean_and_se

IMPROVED, REGRESSED, UNCHANGED = "improved", "regressed", "unchanged"
INCOMPARABLE, DRIFT, TOO_FEW = "incomparable", "drift", "too-few-samples"
VERDICTS = (REGRESSED, DRIFT, TOO_FEW, INCOMPARABLE, IMPROVED, UNCHANGED)
"""Every verdict, most urgent first (the order of a comparison's rows)."""

SPEED_METRICS = ("time_fit_s", "time_compile_s")
EXACT_METRICS = ("grad_evals",)
SBC_METRIC = "sbc_rejected"
RUN_METRIC = "run"


@dataclass(frozen=True)
class Thresholds:
    """``z``: the |standardized difference| an accuracy change must reach; ``factor``:
    the ratio of median times a speed change must exceed; ``alpha``: the rank test's
    significance level."""

    z: float = DEFAULT_Z
    factor: float = DEFAULT_FACTOR
    alpha: float = DEFAULT_ALPHA


@dataclass(frozen=True)
class Side:
    """One side's numbers for a metric: ``center`` (mean, or median for speed), its
    standard error (NaN where none applies) and the sample size ``n``."""

    center: float
    se: float
    n: int


@dataclass(frozen=True)
class Judgement:
    """A verdict with the numbers behind it: ``statistic`` is z (accuracy), the ratio
    of medians (speed) or the change (exact counts); ``pvalue`` the rank test's p;
    ``note`` says why in words."""

    verdict: str
    base: Side | None = None
    new: Side | None = None
    statistic: float = math.nan
    pvalue: float = math.nan
    note: str = ""


def _better(metric: str, change: float) -> bool:
    return (change > 0) == (direction(metric) == HIGHER)


def accuracy(metric: str, base: tuple[np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray],
             thresholds: Thresholds) -> Judgement:
    """Judge accuracy values ``(values, stderrs)`` over seeds (see the module doc)."""
    b, n = Side(*mean_and_se(*base), len(base[0])), Side(*mean_and_se(*new), len(new[0]))
    change = n.center - b.center
    se = math.hypot(b.se, n.se)
    if math.isnan(se):
        return Judgement(TOO_FEW, b, n, note="no standard error to judge by (one seed, estimate without one)")
    z = change / se if se > 0 else (0.0 if change == 0 else math.copysign(math.inf, change))
    tolerance = record(metric).tolerance
    if abs(z) < thresholds.z:
        return Judgement(UNCHANGED, b, n, z, note=f"|z| < {thresholds.z:g}")
    if abs(change) <= tolerance:
        return Judgement(UNCHANGED, b, n, z, note=f"|change| ≤ tolerance {tolerance:g}")
    return Judgement(IMPROVED if _better(metric, change) else REGRESSED, b, n, z)


def smallest_pvalue(n1: int, n2: int) -> float:
    """The smallest two-sided p-value a Mann–Whitney U test of n1 against n2 untied
    samples can give: both orderings at the extremes, ``2 / C(n1 + n2, n1)``."""
    return min(1.0, 2.0 / math.comb(n1 + n2, n1)) if n1 and n2 else 1.0


def speed(base: np.ndarray, new: np.ndarray, thresholds: Thresholds, drift: str) -> Judgement:
    """Judge raw timing samples (see the module doc); ``drift`` names what changed in
    the environment (``""``: nothing)."""
    b = Side(float(np.median(base)), math.nan, len(base))
    n = Side(float(np.median(new)), math.nan, len(new))
    ratio = n.center / b.center if b.center > 0 else math.inf
    if 1 / thresholds.factor <= ratio <= thresholds.factor:
        return Judgement(UNCHANGED, b, n, ratio, note=f"ratio within {thresholds.factor:g}×")
    floor = smallest_pvalue(len(base), len(new))
    if floor >= thresholds.alpha:
        return Judgement(TOO_FEW, b, n, ratio, note=(
            f"{len(base)} vs {len(new)} timings: the rank test cannot reach p < {thresholds.alpha:g} "
            f"(smallest p {floor:.2g}); record more with vibench run --repeat R"))
    p = float(stats.mannwhitneyu(new, base, alternative="two-sided").pvalue)
    if p >= thresholds.alpha:
        return Judgement(UNCHANGED, b, n, ratio, p, note=f"rank test p ≥ {thresholds.alpha:g}")
    if drift:
        return Judgement(DRIFT, b, n, ratio, p, note=f"environment changed: {drift}")
    return Judgement(REGRESSED if ratio > 1 else IMPROVED, b, n, ratio, p)


def exact(metric: str, base: np.ndarray, new: np.ndarray) -> Judgement:
    """Judge exact counts: the mean over seeds, any change a difference."""
    b = Side(float(np.mean(base)), 0.0, len(base))
    n = Side(float(np.mean(new)), 0.0, len(new))
    change = n.center - b.center
    if change == 0:
        return Judgement(UNCHANGED, b, n, 0.0)
    return Judgement(IMPROVED if _better(metric, change) else REGRESSED, b, n, change, note="exact count changed")


def sbc(base: np.ndarray, new: np.ndarray) -> Judgement:
    """Judge SBC verdicts (1: rejected) of the base and new runs."""
    b = Side(float(np.mean(base)), math.nan, len(base))
    n = Side(float(np.mean(new)), math.nan, len(new))
    was, now = bool(np.any(base >= 1)), bool(np.any(new >= 1))
    if now and not was:
        return Judgement(REGRESSED, b, n, note="newly rejected by SBC")
    if was and not now:
        return Judgement(IMPROVED, b, n, note="no longer rejected by SBC")
    return Judgement(UNCHANGED, b, n, note="rejected on both sides" if now else "")


def runs(base_failures: list[str], base_runs: int, new_failures: list[str], new_runs: int) -> Judgement:
    """Judge run status: the failed or NaN runs of each side (their ``status: error``)."""
    b = Side(float(len(base_failures)), math.nan, base_runs)
    n = Side(float(len(new_failures)), math.nan, new_runs)
    if new_failures and not base_failures:
        return Judgement(REGRESSED, b, n, note=f"{len(new_failures)} of {new_runs} run(s) failed: {new_failures[0]}")
    if base_failures and not new_failures:
        return Judgement(IMPROVED, b, n, note=f"no run failed (base: {len(base_failures)} of {base_runs})")
    return Judgement(UNCHANGED, b, n, note=f"failed on both sides: {new_failures[0]}" if new_failures else "")
