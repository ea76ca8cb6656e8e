"""Importance sampling with q as proposal: ELBO, log p(x), PSIS k-hat, ESS, corrected means,
and the ELBO's gap to the best of q's family.

The log importance ratios are log w = log p(x, z) − log q(z) at S draws z ~ q.
Pareto smoothed importance sampling (PSIS; Vehtari, Simpson, Gelman, Yao & Gabry
2024, JMLR 25(72)) fits a generalized Pareto distribution to the M largest ratios,
M = ceil(min(S/5, 3√S)); its shape k-hat says how far the ratios' tail can be
trusted:

- k ≤ 0.5: the ratios have finite variance; plain IS converges at the √S rate.
- 0.5 < k ≤ τ(S) = min(1 − 1/log10 S, 0.7): PSIS estimates are reliable (the
  sample-size-dependent threshold of the 2024 paper; τ = 0.7 for S ≥ 2154,
  lower for fewer draws, where even k = 0.7 cannot be estimated from S draws).
- k > τ(S): PSIS (and plain IS) estimates are unreliable. A k-hat above 1 says the
  S draws have not reached the ratios' tail: with q covering p, E_q[w] = p(x) is
  finite, so k ≤ 1 holds asymptotically, and k > 1 is not a separate regime here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy.special import logsumexp

from vibench.metrics.accuracy import standardized_mean_error
from vibench.metrics.estimates import Estimate
from vibench.numerics.arviz import az

if TYPE_CHECKING:
    from vibench.metrics.evaluation import Evaluation

FINITE_VARIANCE_KHAT = 0.5
RATIO_RESOLUTION = 1e-3
ROUNDING_ULPS = 8


class PSIS(NamedTuple):
    """Pareto-smoothed, normalized log weights; k-hat (None when the ratios are constant
    to working precision: no tail to fit); the number S of draws."""

    log_weights: np.ndarray
    khat: float | None
    n_draws: int

    @property
    def tail_size(self) -> int:
        """M, the number of largest ratios the Pareto fit uses (ArviZ, reff = 1)."""
        return math.ceil(min(self.n_draws / 5.0, 3 * math.sqrt(self.n_draws)))

    @property
    def reliable(self) -> bool:
        return self.khat is None or self.khat <= khat_threshold(self.n_draws)


def khat_threshold(draws: int) -> float:
    """τ(S) = min(1 − 1/log10 S, 0.7): the largest k-hat for which PSIS with S draws is reliable."""
    return min(1.0 - 1.0 / math.log10(draws), 0.7)


def pareto_smooth(log_weights: np.ndarray) -> PSIS:
    """PSIS of independent draws' log ratios via ``az.psislw(log_weights, reff=1.0)``.

    Ratios that all agree within ``RATIO_RESOLUTION`` nats, or within ``ROUNDING_ULPS``
    float32 units in the last place of their magnitude (a log joint of 3·10⁵ nats, as
    ppca[n=50000]'s, is stored to 0.03 nats), whichever is larger (q ∝ p to working
    precision, e.g. an exact posterior: float32 rounding of log p(x, z) ~ 10³ is
    ~10⁻⁴) have no tail to fit; ArviZ would fit their rounding ties (k-hat = ∞ or a
    meaningless negative value). They are bounded, so plain normalized weights are used
    and k-hat is None.
    """
    rounding = ROUNDING_ULPS * float(np.finfo(np.float32).eps) * float(np.max(np.abs(log_weights)))
    if np.ptp(log_weights) < max(RATIO_RESOLUTION, rounding):
        return PSIS(log_weights - logsumexp(log_weights), None, log_weights.size)
    with np.errstate(over="ignore"):  # ArviZ's GPD fit drops candidates whose weight overflows
        smoothed, khat = az.psislw(log_weights, reff=1.0)
    return PSIS(np.asarray(smoothed), float(khat), log_weights.size)


def khat_flag_of(psis: PSIS) -> int:
    """0: k ≤ 0.5 (finite variance); 1: 0.5 < k ≤ τ(S) (PSIS reliable); 2: k > τ(S) (unreliable)."""
    if psis.khat is None or psis.khat <= FINITE_VARIANCE_KHAT:
        return 0
    return 1 if psis.reliable else 2


# ----------------------------------------------------------------------- metrics
def elbo(ev: Evaluation) -> Estimate:
    """E_q[log w], the Monte Carlo mean of the log ratios."""
    w = ev.log_weights
    return Estimate(float(w.mean()), float(w.std(ddof=1) / math.sqrt(w.size)))


def log_px_is(ev: Evaluation) -> Estimate:
    """log mean exp(log w), with the delta-method standard error of the mean ratio.

    se = sd(w) / (√S mean(w)). It needs the ratios' variance to be finite (k ≤ 0.5);
    above, the sample sd does not converge and understates the error (the estimate is
    then a stochastic lower bound of log p(x), biased low), so the stderr is NaN.
    """
    w = ev.log_weights
    value = float(logsumexp(w) - math.log(w.size))
    khat = ev.psis.khat
    if khat is not None and khat > FINITE_VARIANCE_KHAT:
        return Estimate(value, math.nan)
    scaled = np.exp(w - w.max())
    return Estimate(value, float(scaled.std(ddof=1) / (math.sqrt(w.size) * scaled.mean())))


def khat(ev: Evaluation) -> Estimate:
    """PSIS k-hat, with the asymptotic standard error (1 + k)/√M of the Pareto shape's
    estimate from M tail draws (Smith 1987; ArviZ's Zhang–Stephens estimator is near
    that efficiency)."""
    psis = ev.psis
    return Estimate(psis.khat, (1.0 + psis.khat) / math.sqrt(psis.tail_size))


def khat_flag(ev: Evaluation) -> Estimate:
    """k-hat's class (see the module docstring): 0 good, 1 ok, 2 unreliable; exact given k-hat."""
    return Estimate(float(khat_flag_of(ev.psis)))


def is_ess(ev: Evaluation) -> Estimate:
    """1 / Σ w̃², w̃ the normalized PSIS weights: these draws' effective size (exact given them)."""
    return Estimate(float(1.0 / np.sum(np.exp(2 * ev.psis.log_weights))))


def is_ess_frac(ev: Evaluation) -> Estimate:
    """``is_ess`` / S."""
    return Estimate(is_ess(ev).value / ev.psis.n_draws)


def psis_mean_error(ev: Evaluation) -> Estimate:
    """``mean_error`` of the self-normalized PSIS estimate of the posterior mean, Σ w̃ z.

    Its standard error per dimension is the self-normalized IS one,
    sqrt(Σ w̃² (z − μ̂)²) (Owen 2013, ch. 9), combined with the reference's.
    """
    mean, mean_se = ev.weighted_mean(np.exp(ev.psis.log_weights))
    return standardized_mean_error(mean, mean_se, ev.reference)


def family_gap(ev: Evaluation) -> Estimate:
    """The best ELBO q's family can reach minus this ELBO (≥ 0 up to Monte Carlo error)."""
    est = elbo(ev)
    return Estimate(ev.family_best_elbo - est.value, est.stderr)
