"""Metrics of a fitted approximation against the task's ground truth, each with its
standard error.

A metric declares what it needs (a density, an exact evidence, reference moments,
Gaussian forms); where a need is not met the metric is absent, never a made-up number.
All Monte Carlo quantities come from one :class:`Evaluation`, which draws once.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

from vibench.conjugate import gaussian_kl

with warnings.catch_warnings():  # ArviZ 0.23 announces its 1.0 refactor on import
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az
from vibench.core import Approximation, LogDensity, Task

METRIC_DRAWS = 4096


@dataclass(frozen=True)
class Estimate:
    value: float
    stderr: float = 0.0


class Evaluation:
    """Draws from an approximation and the quantities every metric shares.

    ``log_weights`` are log p(x, z) − log q(z) at ``n_draws`` draws from q.
    """

    def __init__(
        self, task: Task, logdensity: LogDensity, approx: Approximation, key, n_draws: int
    ):
        self.task = task
        self.reference = task.reference
        self.approx = approx
        self.logdensity = logdensity
        self.key = key
        self.n_draws = n_draws

    @cached_property
    def log_weights(self) -> np.ndarray:
        approx, logdensity, data = self.approx, self.logdensity, self.task.data

        @jax.jit
        def weights(params, key):
            q = Approximation(params, approx.trace, approx.grad_evals, approx.family)
            z = q.sample(key, self.n_draws)
            return jax.vmap(logdensity.logp, (0, None))(z, data) - q.log_prob(z)

        return np.asarray(weights(approx.params, self.key), dtype=np.float64)

    @cached_property
    def moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean and sd of q per dimension, with their standard errors (zero when exact)."""
        gaussian = self.approx.gaussian()
        if gaussian is not None:
            mean, cov = (np.asarray(a, np.float64) for a in gaussian)
            zeros = np.zeros_like(mean)
            return mean, np.sqrt(np.diag(cov)), zeros, zeros
        if self.approx.has_density:
            draws = np.asarray(self.approx.sample(self.key, self.n_draws), np.float64)[None]
        else:
            draws = np.asarray(self.approx.params["draws"], np.float64)
        return draw_moments(draws, independent=getattr(self.approx.family, "independent", True))


def draw_moments(draws: np.ndarray, independent: bool):
    """Mean, sd and their standard errors from draws of shape (chains, n, dim).

    Standard errors use the effective sample size: n for independent draws, ArviZ's
    bulk ESS (rank-normalized, Vehtari et al. 2021) for MCMC. The sd's standard error
    is the normal-theory sd / sqrt(2(ESS − 1)).
    """
    flat = draws.reshape(-1, draws.shape[-1])
    mean, sd = flat.mean(axis=0), flat.std(axis=0, ddof=1)
    if independent:
        ess = np.full(mean.shape, float(flat.shape[0]))
    else:
        ess = _ess(draws)
    return mean, sd, sd / np.sqrt(ess), sd / np.sqrt(2 * np.maximum(ess - 1, 1))


def _ess(draws: np.ndarray) -> np.ndarray:
    """Bulk ESS per dimension of draws with shape (chains, n, dim)."""
    dataset = az.convert_to_dataset({"z": draws})
    return az.ess(dataset, method="bulk")["z"].values


def rms_with_se(errors: np.ndarray, errors_se: np.ndarray) -> Estimate:
    """sqrt(mean(e²)) with a delta-method standard error from per-dimension errors."""
    rms = float(np.sqrt(np.mean(errors**2)))
    if rms == 0.0:
        return Estimate(0.0, float(np.sqrt(np.mean(errors_se**2))))
    grad = errors / (errors.size * rms)
    return Estimate(rms, float(np.sqrt(np.sum((grad * errors_se) ** 2))))


# ----------------------------------------------------------------------- metrics
def elbo(ev: Evaluation) -> Estimate:
    w = ev.log_weights
    return Estimate(float(w.mean()), float(w.std(ddof=1) / math.sqrt(w.size)))


def log_px(ev: Evaluation) -> Estimate:
    return Estimate(float(ev.reference.log_evidence))


def log_px_is(ev: Evaluation) -> Estimate:
    """log mean exp(log w), with the delta-method standard error of the mean weight."""
    w = ev.log_weights
    scaled = np.exp(w - w.max())
    value = float(logsumexp(w) - math.log(w.size))
    return Estimate(value, float(scaled.std(ddof=1) / (math.sqrt(w.size) * scaled.mean())))


def khat(ev: Evaluation) -> Estimate:
    """PSIS Pareto k-hat of the importance ratios (Vehtari et al. 2024), via ArviZ."""
    _, k = az.psislw(ev.log_weights, reff=1.0)
    return Estimate(float(k))


def kl(ev: Evaluation) -> Estimate:
    """Exact KL(q ‖ p) between a Gaussian q and an exactly Gaussian posterior."""
    mean_q, cov_q = ev.approx.gaussian()
    mean_p, cov_p = ev.reference.gaussian
    return Estimate(float(gaussian_kl(mean_q, cov_q, mean_p, cov_p)))


def family_gap(ev: Evaluation) -> Estimate:
    """The best ELBO q's family can reach minus this ELBO (≥ 0 up to Monte Carlo error)."""
    best = {
        "meanfield": ev.reference.meanfield_elbo,
        "fullrank": ev.reference.log_evidence,
    }[ev.approx.family.name]
    est = elbo(ev)
    return Estimate(best - est.value, est.stderr)


def mean_error(ev: Evaluation) -> Estimate:
    """RMS over dimensions of (mean_q − mean_p) / sd_p."""
    mean, _, mean_se, _ = ev.moments
    ref = ev.reference
    ref_se = np.zeros_like(mean) if ref.mean_se is None else np.asarray(ref.mean_se)
    sd_p = np.asarray(ref.std, np.float64)
    errors = (mean - np.asarray(ref.mean, np.float64)) / sd_p
    return rms_with_se(errors, np.hypot(mean_se, ref_se) / sd_p)


def std_error(ev: Evaluation) -> Estimate:
    """RMS over dimensions of log(sd_q / sd_p)."""
    _, sd, _, sd_se = ev.moments
    ref = ev.reference
    sd_p = np.asarray(ref.std, np.float64)
    ref_se = np.zeros_like(sd) if ref.std_se is None else np.asarray(ref.std_se) / sd_p
    return rms_with_se(np.log(sd / sd_p), np.hypot(sd_se / sd, ref_se))


@dataclass(frozen=True)
class Metric:
    name: str
    compute: Callable[[Evaluation], Estimate]
    applies: Callable[[Evaluation], bool]


def _density(ev: Evaluation) -> bool:
    return ev.approx.has_density


METRICS: tuple[Metric, ...] = (
    Metric("elbo", elbo, _density),
    Metric("log_px", log_px, lambda ev: ev.reference.log_evidence is not None),
    Metric("log_px_is", log_px_is, _density),
    Metric("khat", khat, _density),
    Metric(
        "kl",
        kl,
        lambda ev: ev.reference.gaussian is not None and ev.approx.gaussian() is not None,
    ),
    Metric(
        "family_gap",
        family_gap,
        lambda ev: (ev.approx.family.name == "meanfield" and ev.reference.meanfield_elbo is not None)
        or (ev.approx.family.name == "fullrank" and ev.reference.gaussian is not None),
    ),
    Metric("mean_error", mean_error, lambda ev: ev.reference.mean is not None),
    Metric("std_error", std_error, lambda ev: ev.reference.std is not None),
)


def evaluate(
    task: Task, logdensity: LogDensity, approx: Approximation, key, n_draws: int = METRIC_DRAWS
) -> dict[str, Estimate]:
    """Every metric that applies to ``approx`` on ``task``."""
    ev = Evaluation(task, logdensity, approx, key, n_draws)
    return {m.name: m.compute(ev) for m in METRICS if m.applies(ev)}
