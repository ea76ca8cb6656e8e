"""Distances between the approximation's draws and exact reference draws.

Both samples have the same size n (``DISTANCE_DRAWS``, or ``n_draws`` if fewer; see
:attr:`vibench.metrics.evaluation.Evaluation.distance_samples`), with coordinates
divided by the reference posterior sd, so every distance is scale-free (and
invariant to rescaling any coordinate). A distance between two samples of size n
has a positive floor even when q = p: for W1 between two samples of a 1-d
distribution F it is E W1 ≈ 2/√(πn) ∫ √(F(1 − F)) dx, i.e. 1.82/√n sd for a normal
(0.041 at n = 2000). Every method is measured with the same n, so the floor is
common; it is the resolution of ``w1_mean`` and ``w1_sliced``. The unbiased ``mmd``
has no floor.

Standard errors of the W1s come from a delete-a-group jackknife over the paired
draws (``JACKKNIFE_GROUPS`` groups); jackknife variances err on the large side
(Efron & Stein 1981). It is consistent where W1 is a smooth functional (q ≠ p) and
conservative where it is not (q = p: about 1.3× the true sd, measured). Batch means,
which assume the variance scales as 1/n, understate it by up to half when the
shift is comparable to the noise, where W1 at a batch's size is mostly its floor.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist

from vibench.metrics.estimates import Estimate
from vibench.metrics.evaluation import DIRECTIONS_STREAM, Evaluation

JACKKNIFE_GROUPS = 20
SLICE_DIRECTIONS = 128
BANDWIDTH_DRAWS = 500
KERNEL_CHUNK = 250


def marginal_w1(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """W1 per column between equal-size samples x, y (n, k): mean |x₍ᵢ₎ − y₍ᵢ₎| of the sorted
    values, the 1-d optimal coupling (= ``scipy.stats.wasserstein_distance`` per column)."""
    if x.shape != y.shape:
        raise ValueError(f"samples of equal shape needed, got {x.shape} and {y.shape}")
    return np.mean(np.abs(np.sort(x, axis=0) - np.sort(y, axis=0)), axis=0)


def mean_marginal_w1(x: np.ndarray, y: np.ndarray) -> Estimate:
    """The average over columns of the 1-d W1 between x and y (n, k), with the
    delete-a-group jackknife standard error over paired draws (module docstring):
    sqrt((G − 1)/G Σ (θ₋g − θ̄)²), θ₋g the value without group g of ``JACKKNIFE_GROUPS``.

    Each column is sorted once; leaving a group out keeps the others' sorted order,
    so each θ₋g drops the group's positions from the sorted columns instead of re-sorting.
    """
    if x.shape != y.shape:
        raise ValueError(f"samples of equal shape needed, got {x.shape} and {y.shape}")
    n, k = x.shape
    order_x, order_y = np.argsort(x, axis=0), np.argsort(y, axis=0)
    sorted_x = np.take_along_axis(x, order_x, axis=0).T
    sorted_y = np.take_along_axis(y, order_y, axis=0).T
    group = np.arange(n) * JACKKNIFE_GROUPS // n
    group_x, group_y = group[order_x].T, group[order_y].T
    left_out = np.empty(JACKKNIFE_GROUPS)
    for g in range(JACKKNIFE_GROUPS):
        kept_x = sorted_x[group_x != g].reshape(k, -1)
        kept_y = sorted_y[group_y != g].reshape(k, -1)
        left_out[g] = np.mean(np.abs(kept_x - kept_y))
    spread = (JACKKNIFE_GROUPS - 1) / JACKKNIFE_GROUPS * np.sum((left_out - left_out.mean()) ** 2)
    return Estimate(float(np.mean(np.abs(sorted_x - sorted_y))), float(np.sqrt(spread)))


def sliced_w1(x: np.ndarray, y: np.ndarray, directions: np.ndarray) -> Estimate:
    """Average over unit ``directions`` (L, dim) of W1(θᵀx, θᵀy) / sd(θᵀy).

    Each slice is divided by the reference sample's sd along it, so every direction
    counts alike (as every coordinate does in ``w1_mean``), whatever the posterior's
    correlations. The standard error adds the jackknife one (directions fixed) and
    the spread over directions, sd / √L.
    """
    px, py = x @ directions.T, y @ directions.T
    scale = py.std(axis=0, ddof=1)
    px, py = px / scale, py / scale
    per_direction = marginal_w1(px, py)
    direction_se = per_direction.std(ddof=1) / np.sqrt(per_direction.size)
    mean = mean_marginal_w1(px, py)
    return Estimate(mean.value, float(np.hypot(mean.stderr, direction_se)))


def unit_directions(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    """``count`` directions uniform on the unit sphere in ``dim`` dimensions."""
    g = rng.standard_normal((count, dim))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def median_bandwidth(x: np.ndarray, y: np.ndarray) -> float:
    """The median heuristic (Gretton et al. 2012): the median Euclidean distance between
    pairs of the pooled first ``BANDWIDTH_DRAWS`` draws of each sample."""
    return float(np.median(pdist(np.vstack([x[:BANDWIDTH_DRAWS], y[:BANDWIDTH_DRAWS]]))))


def mmd_squared(x: np.ndarray, y: np.ndarray, bandwidth: float) -> Estimate:
    """Unbiased MMD² with k(a, b) = exp(−|a − b|² / 2h²) between equal-size samples.

    With observations oᵢ = (xᵢ, yᵢ), MMD²_u is the U-statistic of
    h(oᵢ, oⱼ) = k(xᵢ,xⱼ) + k(yᵢ,yⱼ) − k(xᵢ,yⱼ) − k(xⱼ,yᵢ) (Gretton et al. 2012),
    so Var = 2/(n(n−1)) [2(n−2) ζ₁ + ζ₂], with ζ₂ = Var h and ζ₁ = Var E[h | oᵢ]
    (Hoeffding 1948). ζ₁ is estimated from the variance s² of the row means of h,
    which is ζ₁ + (ζ₂ − ζ₁)/(n − 1), and clipped at zero, its least value. When q = p
    (ζ₁ = 0) the variance is the second, O(1/n²) term; the row means then share a few
    random coefficients, so s² is noisy and the clipping makes the standard error
    conservative there (≈1.2–1.4× the true sd, measured); it is consistent for q ≠ p.

    The kernel is computed ``KERNEL_CHUNK`` rows at a time in float32 (four times
    faster than float64; the relative rounding of |a − b|²/2h², ~10⁻⁷, is far below
    any MMD² that its standard error resolves), and summed in float64.
    """
    n = x.shape[0]
    pooled = np.vstack([x, y]).astype(np.float32)
    sq_norms = np.sum(pooled**2, axis=1)
    scale = np.float32(-0.5 / bandwidth**2)
    row_sums = np.empty(n)
    sum_squares = 0.0
    for start in range(0, n, KERNEL_CHUNK):
        stop = min(start + KERNEL_CHUNK, n)
        m = stop - start
        rows = np.concatenate([np.arange(start, stop), n + np.arange(start, stop)])
        kernel = pooled[rows] @ pooled.T  # rows (xᵢ then yᵢ) against (x then y)
        kernel *= -2.0
        kernel += sq_norms[rows, None]
        kernel += sq_norms[None, :]
        np.maximum(kernel, 0.0, out=kernel)
        kernel *= scale
        np.exp(kernel, out=kernel)
        h = kernel[:m, :n] + kernel[m:, n:] - kernel[:m, n:] - kernel[m:, :n]
        h[np.arange(m), np.arange(start, stop)] = 0.0
        row_sums[start:stop] = h.sum(axis=1, dtype=np.float64)
        sum_squares += float(np.sum(np.square(h, dtype=np.float64)))
    pairs = n * (n - 1)
    value = row_sums.sum() / pairs
    zeta2 = sum_squares / pairs - value**2
    row_var = np.var(row_sums / (n - 1), ddof=1)
    zeta1 = max((row_var - zeta2 / (n - 1)) / (1 - 1 / (n - 1)), 0.0)
    variance = 2 / pairs * (2 * (n - 2) * zeta1 + zeta2)
    return Estimate(float(value), float(np.sqrt(variance)))


# ----------------------------------------------------------------------- metrics
def w1_mean(ev: Evaluation) -> Estimate:
    """Mean over coordinates of W1(q_i, p_i) / sd_p,i between the samples' marginals."""
    return mean_marginal_w1(*ev.distance_samples)


def w1_sliced(ev: Evaluation) -> Estimate:
    """Sliced W1 over ``SLICE_DIRECTIONS`` random directions, each in units of p's sd along it."""
    x, y = ev.distance_samples
    directions = unit_directions(ev.numpy_rng(DIRECTIONS_STREAM), SLICE_DIRECTIONS, x.shape[1])
    return sliced_w1(x, y, directions)


def mmd(ev: Evaluation) -> Estimate:
    """MMD² (squared, unbiased; may be slightly negative) with an RBF kernel whose
    bandwidth is the median heuristic on the pooled, sd-scaled draws."""
    x, y = ev.distance_samples
    return mmd_squared(x, y, median_bandwidth(x, y))
