"""Metrics of a fitted approximation against the task's ground truth, each with its
standard error.

A metric declares what it needs (a density, an exact evidence, reference moments or
draws, Gaussian forms, a task's modes, reliable importance weights); where a need is
not met the metric is absent, never a made-up number. All Monte Carlo quantities come
from one :class:`Evaluation`, which draws once. A ``stderr`` of 0 means exact, NaN
that no valid standard error exists.

Modules: ``estimates`` (standard errors), ``evaluation`` (the shared draws),
``importance`` (ELBO, log p(x), PSIS), ``accuracy`` (moments, KL), ``distances``
(W1, sliced W1, MMD), ``multimodal`` (mode coverage and mass).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vibench.core import Approximation, LogDensity, Task
from vibench.metrics.accuracy import kl, log_px, mean_error, std_error
from vibench.metrics.distances import mmd, w1_mean, w1_sliced
from vibench.metrics.estimates import Estimate, draw_moments, rms_with_se
from vibench.metrics.evaluation import DISTANCE_DRAWS, METRIC_DRAWS, Evaluation
from vibench.metrics.importance import (
    elbo,
    family_gap,
    is_ess,
    is_ess_frac,
    khat,
    khat_flag,
    log_px_is,
    psis_mean_error,
)
from vibench.metrics.multimodal import mode_coverage, mode_mass_error
from vibench.modes import Modes

__all__ = [
    "DISTANCE_DRAWS",
    "METRICS",
    "METRIC_DRAWS",
    "Estimate",
    "Evaluation",
    "Metric",
    "draw_moments",
    "evaluate",
    "rms_with_se",
]


@dataclass(frozen=True)
class Metric:
    name: str
    compute: Callable[[Evaluation], Estimate]
    applies: Callable[[Evaluation], bool]


def _density(ev: Evaluation) -> bool:
    return ev.approx.has_density


def _reference_moments(ev: Evaluation) -> bool:
    return ev.reference.mean is not None and ev.reference.std is not None


def _family_gap_known(ev: Evaluation) -> bool:
    family, ref = ev.approx.family.name, ev.reference
    return (family == "meanfield" and ref.meanfield_elbo is not None) or (
        family == "fullrank" and ref.gaussian is not None
    )


METRICS: tuple[Metric, ...] = (
    Metric("elbo", elbo, _density),
    Metric("log_px", log_px, lambda ev: ev.reference.log_evidence is not None),
    Metric("log_px_is", log_px_is, _density),
    Metric("khat", khat, lambda ev: _density(ev) and ev.psis.khat is not None),
    Metric("khat_flag", khat_flag, _density),
    Metric("is_ess", is_ess, _density),
    Metric("is_ess_frac", is_ess_frac, _density),
    Metric(
        "kl",
        kl,
        lambda ev: ev.reference.gaussian is not None and ev.approx.gaussian() is not None,
    ),
    Metric("family_gap", family_gap, _family_gap_known),
    Metric("mean_error", mean_error, _reference_moments),
    Metric("std_error", std_error, lambda ev: ev.reference.std is not None),
    Metric(
        "psis_mean_error",
        psis_mean_error,
        lambda ev: _density(ev) and _reference_moments(ev) and ev.psis.reliable,
    ),
    Metric("w1_mean", w1_mean, lambda ev: ev.distance_samples is not None),
    Metric("w1_sliced", w1_sliced, lambda ev: ev.distance_samples is not None),
    Metric("mmd", mmd, lambda ev: ev.distance_samples is not None),
    Metric("mode_coverage", mode_coverage, lambda ev: ev.task.extension(Modes) is not None),
    Metric("mode_mass_error", mode_mass_error, lambda ev: ev.task.extension(Modes) is not None),
)


def evaluate(
    task: Task, logdensity: LogDensity, approx: Approximation, key, n_draws: int = METRIC_DRAWS
) -> dict[str, Estimate]:
    """Every metric that applies to ``approx`` on ``task``."""
    ev = Evaluation(task, logdensity, approx, key, n_draws)
    return {m.name: m.compute(ev) for m in METRICS if m.applies(ev)}
