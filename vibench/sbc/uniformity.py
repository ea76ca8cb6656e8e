"""Tests that SBC ranks are uniform, and that their VSBC probabilities are symmetric.

Ranks take the L + 1 values 0..L (the number of the L posterior draws below the true
value), and under a calibrated method they are i.i.d. discrete uniform. Every p-value
here is exact for that discrete null, not a continuous approximation of it:

- :func:`chi2_pvalue`: Pearson's chi-square on contiguous rank bins (the large-sample
  approximation, valid with every expected count ≥ 5, which the binning guarantees).
- :func:`ecdf_pvalue`: the simultaneous ECDF test of Säilynoja, Bürkner & Vehtari
  (2022): the smallest two-sided binomial tail probability of the ECDF over the
  evaluation points, with its null distribution computed exactly by their recursion
  (the ECDF at successive points is a Markov chain of binomial increments).
- :func:`vsbc_pvalue`: symmetry of p = P_q(θ < θ_true) = rank / L about ½ (Yao et al.
  2018), with their KS distance between p and 1 − p, and its exact null distribution
  under symmetry (a random reflection of each replicate), not the two-sample KS table,
  which assumes two independent samples.
- :func:`holm`: Holm's step-down adjustment over many parameters and tests.

The ECDF and VSBC p-values are computed as 1 − P(accept), so below
:data:`P_RESOLUTION` they are rounding error (reported as such, often exactly 0).
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

MIN_EXPECTED_COUNT = 5
P_RESOLUTION = 1e-15  # p-values computed as 1 − P(accept) are exact to about this
MAX_BINS = 20
MAX_ECDF_POINTS = 100


def chi2_bins(n_replicates: int, n_draws: int, max_bins: int = MAX_BINS) -> list[np.ndarray]:
    """Contiguous groups of the rank values 0..L, as many (≤ ``max_bins``) as keep every
    expected count ≥ 5; sizes differ by at most one rank value."""
    n_values = n_draws + 1
    for n_bins in range(min(max_bins, n_values), 1, -1):
        if n_replicates * (n_values // n_bins) / n_values >= MIN_EXPECTED_COUNT:
            return np.array_split(np.arange(n_values), n_bins)
    raise ValueError(
        f"{n_replicates} replicates are too few for two bins with expected counts >= "
        f"{MIN_EXPECTED_COUNT}; use at least {2 * MIN_EXPECTED_COUNT}"
    )


def chi2_pvalue(ranks: np.ndarray, n_draws: int) -> float:
    """Pearson's chi-square test of ``ranks`` (R,) against the discrete uniform on 0..L."""
    counts = np.bincount(ranks, minlength=n_draws + 1)
    bins = chi2_bins(ranks.shape[0], n_draws)
    observed = np.array([counts[b].sum() for b in bins])
    expected = np.array([ranks.shape[0] * b.size / (n_draws + 1) for b in bins])
    return float(stats.chisquare(observed, expected).pvalue)


def cumulative_counts(ranks: np.ndarray, n_draws: int) -> np.ndarray:
    """#{rank ≤ t} for t = 0..L, per column of ``ranks`` (R, P): shape (L + 1, P)."""
    hist = np.zeros((n_draws + 1, ranks.shape[1]), dtype=np.int64)
    np.add.at(hist, (ranks, np.arange(ranks.shape[1])[None, :]), 1)
    return np.cumsum(hist, axis=0)


def ecdf_thresholds(n_draws: int, max_points: int = MAX_ECDF_POINTS) -> np.ndarray:
    """Rank values t at which the ECDF #{rank ≤ t}/R is tested: every one of 0..L−1,
    or ``max_points`` evenly spaced ones when L is larger."""
    if n_draws <= max_points:
        return np.arange(n_draws)
    return np.unique(np.round(np.linspace(0, n_draws - 1, max_points)).astype(int))


def ecdf_pvalue(ranks: np.ndarray, n_draws: int) -> np.ndarray:
    """The simultaneous ECDF test of uniform ranks, for each column of ``ranks`` (R, P).

    With c_j = #{rank ≤ t_j} and z_j = (t_j + 1)/(L + 1), c_j ~ Bin(R, z_j) under the
    null, and the statistic is γ = min_j 2·min(P(C ≤ c_j), P(C ≥ c_j)). The p-value
    P(Γ ≤ γ_obs) is 1 − P(every c_j in its acceptance interval), computed exactly:
    given c_{j−1}, c_j − c_{j−1} ~ Bin(R − c_{j−1}, (z_j − z_{j−1})/(1 − z_{j−1})).
    """
    n_rep = ranks.shape[0]
    t = ecdf_thresholds(n_draws)
    z = (t + 1) / (n_draws + 1)
    counts = np.arange(n_rep + 1)
    tails = 2 * np.minimum(
        stats.binom.cdf(counts, n_rep, z[:, None]), stats.binom.sf(counts - 1, n_rep, z[:, None])
    )  # (K, R + 1): the pointwise two-sided tail probability of each count
    observed = cumulative_counts(ranks, n_draws)[t]  # (K, P)
    gamma = tails[np.arange(t.size)[:, None], observed].min(axis=0)  # (P,)
    inside = np.zeros((gamma.size, n_rep + 1))
    inside[:, 0] = 1.0
    z_prev = 0.0
    for j in range(t.size):
        step = (z[j] - z_prev) / (1 - z_prev)
        transition = stats.binom.pmf(counts[None, :] - counts[:, None], n_rep - counts[:, None], step)
        inside = (inside @ transition) * (tails[j][None, :] > gamma[:, None])
        z_prev = z[j]
    return np.clip(1.0 - inside.sum(axis=1), 0.0, 1.0)


def vsbc_statistic(ranks: np.ndarray, n_draws: int) -> int:
    """R · sup_x |F_p(x) − F_{1−p}(x)| for p = rank / L: the largest |partial sum| of
    d_j = n_j − n_{L−j} over j < L/2 (n_j: replicates with rank j; later partial sums
    repeat these, since d is antisymmetric)."""
    counts = np.bincount(ranks, minlength=n_draws + 1)
    half = (n_draws + 1) // 2
    d = counts[:half] - counts[::-1][:half]
    return int(np.abs(np.cumsum(d)).max()) if half else 0


def vsbc_pvalue(ranks: np.ndarray, n_draws: int) -> float:
    """Exact p-value of :func:`vsbc_statistic` under symmetry of p about ½.

    Under symmetry each replicate's rank is equally likely to be j or L − j given the
    pair, so n_j ~ Bin(m_j, ½) independently with m_j = n_j + n_{L−j}, and the partial
    sums of d_j = 2 n_j − m_j are a walk whose largest excursion has an exactly
    computable law (a recursion over the walk's value, absorbed at ±statistic).
    """
    n_rep = ranks.shape[0]
    observed = vsbc_statistic(ranks, n_draws)
    if observed == 0:
        return 1.0
    counts = np.bincount(ranks, minlength=n_draws + 1)
    half = (n_draws + 1) // 2
    pair_totals = counts[:half] + counts[::-1][:half]
    log_factorial = special.gammaln(np.arange(n_rep + 1) + 1.0)
    values = np.arange(-n_rep, n_rep + 1)
    walk = (values == 0).astype(float)
    for m in pair_totals:
        kernel = np.zeros(2 * m + 1)  # d = 2 n_j − m_j takes the values −m, −m + 2, ..., m
        k = np.arange(m + 1)
        kernel[::2] = np.exp(log_factorial[m] - log_factorial[k] - log_factorial[m - k] - m * np.log(2))
        walk = np.convolve(walk, kernel)[m : m + 2 * n_rep + 1] * (np.abs(values) < observed)
    return float(np.clip(1.0 - walk.sum(), 0.0, 1.0))


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values: reject H_i at level α iff adjusted_i ≤ α.
    Controls the family-wise error rate under any dependence between the tests."""
    pvalues = np.asarray(pvalues, dtype=float)
    order = np.argsort(pvalues)
    m = pvalues.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * pvalues[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted
