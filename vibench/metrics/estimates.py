"""Estimates with standard errors, and the Monte Carlo errors of means over draws.

Draws come as arrays of shape (chains, n, k): one chain of independent draws from a
density, several (autocorrelated) MCMC chains, or a particle set (one "chain" whose
members are the approximation itself: see :class:`vibench.families.Draws`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vibench.families.draws import DrawKind
from vibench.numerics.arviz import az


@dataclass(frozen=True)
class Estimate:
    """A metric's value and its standard error.

    ``stderr`` is 0 for an exact value and NaN where no valid standard error exists
    (e.g. importance sampling whose weights have infinite variance).
    """

    value: float
    stderr: float = 0.0


def mean_with_se(series: np.ndarray, kind: DrawKind) -> tuple[np.ndarray, np.ndarray]:
    """Mean over draws of ``series`` (chains, n, k), per column, and its standard error.

    The standard error is sd / sqrt(ESS): ESS is the number of draws when they are
    independent (``iid``), ArviZ's ESS for the mean (split chains, not rank-normalized;
    Vehtari et al. 2021), the one ``az.mcse(method="mean")`` uses, for ``mcmc``; and 0
    for ``particles``, whose mean is the approximation's own, not an estimate of it.
    """
    flat = series.reshape(-1, series.shape[-1])
    mean, sd = flat.mean(axis=0), flat.std(axis=0, ddof=1)
    if kind == "particles":
        return mean, np.zeros_like(mean)
    if kind == "iid":
        ess = np.full(mean.shape, float(flat.shape[0]))
    else:
        ess = az.ess(az.convert_to_dataset({"x": series}), method="mean")["x"].values
    return mean, sd / np.sqrt(ess)


def draw_moments(
    draws: np.ndarray, kind: DrawKind
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sd and their standard errors per dimension from draws (chains, n, dim).

    The sd's error comes from that of the variance, the mean of the squared deviations:
    se(sd) = se(var) / (2 sd), with the ESS of the squared deviations, as in
    ``az.mcse(method="sd")``. It holds for any distribution with a finite fourth
    moment, not only a normal one (whose se(sd) would be sd / sqrt(2(n − 1))). A
    particle set's sd is its own (no n − 1 correction: it estimates nothing).
    """
    mean, mean_se = mean_with_se(draws, kind)
    var, var_se = mean_with_se((draws - mean) ** 2, kind)
    n = draws.shape[0] * draws.shape[1]
    sd = np.sqrt(var if kind == "particles" else var * n / (n - 1))
    sd_se = np.divide(var_se, 2 * sd, out=np.zeros_like(sd), where=sd > 0)
    return mean, sd, mean_se, sd_se


class StreamingMoments:
    """:func:`draw_moments` of independent draws seen in chunks, never all at once.

    Accumulates power sums Σ uᵖ (p = 1..4, float64) of u = z − c about the first
    chunk's mean c (so the sums do not cancel catastrophically when |mean| ≫ sd), and
    turns them into the mean, the sd (n − 1 corrected), se(mean) = sd/√n and
    se(sd) = se(var)/(2 sd), se(var) from the fourth central moment: the values of
    ``draw_moments(draws, "iid")`` up to float64 rounding, in O(dim) memory.
    """

    def __init__(self) -> None:
        self.count = 0
        self.shift: np.ndarray | None = None
        self.sums: list[np.ndarray] = []

    def add(self, chunk: np.ndarray) -> None:
        """Add draws ``chunk`` (m, dim)."""
        chunk = np.asarray(chunk, np.float64)
        if self.shift is None:
            self.shift = chunk.mean(axis=0)
            self.sums = [np.zeros_like(self.shift) for _ in range(4)]
        u = chunk - self.shift
        power = np.ones_like(u)
        for p in range(4):
            power *= u
            self.sums[p] += power.sum(axis=0)
        self.count += chunk.shape[0]

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, sd, and their standard errors per dimension."""
        n = self.count
        if n < 2:
            raise ValueError(f"moments need at least 2 draws, got {n}")
        s1, s2, s3, s4 = (s / n for s in self.sums)
        d = s1
        m2 = np.maximum(s2 - d**2, 0.0)
        m4 = np.maximum(s4 - 4 * d * s3 + 6 * d**2 * s2 - 3 * d**4, 0.0)
        sd = np.sqrt(m2 * n / (n - 1))
        var_se = np.sqrt(np.maximum(m4 - m2**2, 0.0) * n / (n - 1) / n)
        sd_se = np.divide(var_se, 2 * sd, out=np.zeros_like(sd), where=sd > 0)
        return self.shift + d, sd, sd / np.sqrt(n), sd_se


def rms_with_se(errors: np.ndarray, errors_se: np.ndarray) -> Estimate:
    """sqrt(mean(e²)) over dimensions, with a standard error from the per-dimension ones.

    Each estimated eᵢ is taken as normal about its true value with sd sᵢ, so
    Var(eᵢ²) = 4eᵢ²sᵢ² + 2sᵢ⁴; estimated unbiasedly by 4êᵢ²sᵢ² − 2sᵢ⁴ and floored at
    2sᵢ⁴ summed (its value when every true eᵢ is zero, the least it can be). The
    mean square M then has standard error s; the returned one is sqrt(M + s) − sqrt(M),
    which is the delta method's s / (2 rms) when rms is well above its noise and stays
    finite as rms → 0. (The first-order delta method, linearized about the noisy êᵢ,
    is √2 too large for an rms made of noise, and undefined at rms = 0.)
    """
    errors, errors_se = np.asarray(errors, np.float64), np.asarray(errors_se, np.float64)
    mean_square = float(np.mean(errors**2))
    variance_terms = 4 * errors**2 * errors_se**2 - 2 * errors_se**4
    variance = max(float(np.sum(variance_terms)), float(np.sum(2 * errors_se**4)))
    ms_se = np.sqrt(variance) / errors.size
    rms = np.sqrt(mean_square)
    return Estimate(float(rms), float(np.sqrt(mean_square + ms_se) - rms))
