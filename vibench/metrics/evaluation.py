"""One evaluation of an approximation: its draws and the quantities every metric shares.

Everything is drawn once, lazily, from keys split off the evaluation's key, so a
metric's value is a deterministic function of (task, approximation, key).

Memory is bounded: the log joint is evaluated over q's draws in chunks of
:func:`chunk_size` draws, sized so that one chunk's draws, their noise, a float64
copy and the log joint's intermediates fit in :data:`MEMORY_BUDGET`. A Gaussian
family draws rows of its own n-draw sample (``sample_rows``), so chunking changes no
draw: draw i is the same whatever the chunk size (and with one chunk, every number
is that of ``sample_and_log_prob(params, key, n)``). Only the n log weights are kept
whole; moments are exact for Gaussian families and streamed (power sums per chunk)
otherwise; the distance metrics keep the first ``DISTANCE_DRAWS`` draws, and only for
tasks of at most :data:`DISTANCE_MAX_DIM` dimensions. A family without ``sample_rows``
(a flow) is drawn in one chunk: such families serve low-dimensional targets.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import Iterator, NamedTuple

import jax
import numpy as np

from vibench.core import Approximation, Data, Family, LogDensity, LogJointFn, Task
from vibench.families.draws import DrawKind
from vibench.families.gaussian import check_rows
from vibench.metrics.accuracy import exact_kl
from vibench.metrics.estimates import Estimate, StreamingMoments, draw_moments
from vibench.metrics.importance import PSIS, pareto_smooth
from vibench.metrics.records import COMPUTED, METRIC_DRAWS
from vibench.structure.modes import Modes

DISTANCE_DRAWS = 2000
DISTANCE_MAX_DIM = 1000
"""The distance metrics (W1, MMD) run on tasks of at most this many dimensions: their two
float64 samples of ``DISTANCE_DRAWS`` draws are then 32 MB, with sorted and float32
copies well inside :data:`MEMORY_BUDGET`; in more dimensions a few thousand draws
resolve no distance between the joint distributions anyway."""
SUBSAMPLE_STREAM, DIRECTIONS_STREAM = 0, 1

MEMORY_BUDGET = 256 * 2**20
"""Bytes of working memory one chunk of draws may take (see :func:`chunk_size`)."""


def bytes_per_draw(dim: int, data: Data) -> int:
    """Working memory of one draw: z and its noise in float32, a float64 copy of z, and
    the log joint's intermediates, taken as twice the data's bytes (a likelihood's mean
    and residual have the data's shape; ppca measured below this)."""
    data_bytes = sum(int(np.prod(np.shape(leaf))) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(data))
    return dim * (4 + 4 + 8) + 2 * data_bytes


def chunk_size(dim: int, data: Data, n_draws: int, budget: int = MEMORY_BUDGET) -> int:
    """Draws per chunk: ``budget // bytes_per_draw``, at least 1, at most ``n_draws``."""
    return max(1, min(n_draws, budget // bytes_per_draw(dim, data)))


@lru_cache(maxsize=32)
def _compiled_q_sample(family: Family, logp: LogJointFn, n: int):
    """``sample(params, data, key) -> (z, log p(x, z) − log q(z))`` for n draws, jitted
    once per (family, log density, n), so seeds of one run share the compilation.
    log q comes from ``sample_and_log_prob``, stable where the scale is ill-conditioned."""

    @jax.jit
    def sample(params, data, key):
        z, log_q = family.sample_and_log_prob(params, key, n)
        return z, jax.vmap(logp, (0, None))(z, data) - log_q

    return sample


@lru_cache(maxsize=32)
def _compiled_q_rows(family: Family, logp: LogJointFn, count: int):
    """``rows(params, data, key, start) -> (z, log w)`` for draws ``start`` to ``start +
    count`` of q's sample (``family.sample_rows``), jitted once per chunk size."""

    @jax.jit
    def rows(params, data, key, start):
        z, log_q = family.sample_rows(params, key, start, count)
        return z, jax.vmap(logp, (0, None))(z, data) - log_q

    return rows


class DrawSet(NamedTuple):
    """An approximation's draws, shape (chains, n, dim), and what they are (iid, MCMC
    or particles: :class:`vibench.families.Draws`)."""

    values: np.ndarray
    kind: DrawKind


class Evaluation:
    """Draws from an approximation and the quantities every metric shares.

    ``log_weights`` are log p(x, z) − log q(z) at ``n_draws`` draws z from q;
    ``psis`` their Pareto-smoothed version; ``draws`` the approximation's draws
    (those from q, all at once: for the mode metrics of low-dimensional targets, or a
    draws family's own); ``distance_samples`` equal-size, standardized samples of the
    approximation and of the reference. ``budget`` bounds the bytes of one chunk of
    q's draws (see the module docstring).
    """

    def __init__(
        self,
        task: Task,
        logdensity: LogDensity,
        approx: Approximation,
        key,
        n_draws: int,
        budget: int = MEMORY_BUDGET,
    ):
        self.task = task
        self.reference = task.reference
        self.approx = approx
        self.logdensity = logdensity
        self.n_draws = n_draws
        self.budget = budget
        self.key_q, self.key_reference, key_numpy = jax.random.split(key, 3)
        self._numpy_seed = [int(word) for word in np.asarray(jax.random.key_data(key_numpy))]

    def numpy_rng(self, stream: int) -> np.random.Generator:
        """An independent NumPy generator per ``stream``, seeded from the evaluation's key
        (for draws the harness makes itself: no JAX compilation for a handful of numbers)."""
        return np.random.default_rng([*self._numpy_seed, stream])

    @cached_property
    def chunk(self) -> int:
        """Draws of q per chunk: all of them for a family without ``sample_rows``."""
        if not hasattr(self.approx.family, "sample_rows"):
            return self.n_draws
        return chunk_size(self.logdensity.dim, self.task.data, self.n_draws, self.budget)

    def q_chunks(self) -> Iterator[tuple[jax.Array, jax.Array]]:
        """q's ``n_draws`` draws and their log ratios, ``chunk`` draws at a time, in order."""
        family, logp, params, data = self.approx.family, self.logdensity.logp, self.approx.params, self.task.data
        if not hasattr(family, "sample_rows"):
            yield _compiled_q_sample(family, logp, self.n_draws)(params, data, self.key_q)
            return
        check_rows(0, self.n_draws, self.logdensity.dim)
        for start in range(0, self.n_draws, self.chunk):
            count = min(self.chunk, self.n_draws - start)
            yield _compiled_q_rows(family, logp, count)(params, data, self.key_q, start)

    @cached_property
    def _q_pass(self) -> tuple[np.ndarray, np.ndarray | None, StreamingMoments | None]:
        """One pass over q's chunks: the log ratios (float64), the first draws the
        distance metrics use (None when they do not apply), and streamed moments (None
        where q's moments are exact)."""
        keep = min(DISTANCE_DRAWS, self.n_draws) if self._distances_apply else 0
        moments = None if self._exact_marginals is not None else StreamingMoments()
        log_weights, first = [], []
        for z, log_w in self.q_chunks():
            log_weights.append(np.asarray(log_w, np.float64))
            kept = sum(len(f) for f in first)
            if kept < keep:
                first.append(np.asarray(z[: keep - kept], np.float64))
            if moments is not None:
                moments.add(np.asarray(z, np.float64))
        return np.concatenate(log_weights), np.concatenate(first) if keep else None, moments

    @property
    def log_weights(self) -> np.ndarray:
        return self._q_pass[0]

    def weighted_mean(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Σ wᵢ zᵢ over q's draws for normalized ``weights`` (n_draws,), and its
        self-normalized IS standard error sqrt(Σ wᵢ² (zᵢ − μ̂)²), streamed over chunks
        (a second pass over the same draws)."""
        dim = self.logdensity.dim
        first, second, squares = np.zeros(dim), np.zeros(dim), np.zeros(dim)
        start = 0
        for z, _ in self.q_chunks():
            z = np.asarray(z, np.float64)
            w = weights[start : start + z.shape[0]]
            first += w @ z
            second += w**2 @ z
            squares += w**2 @ z**2
            start += z.shape[0]
        mean = first
        variance = squares - 2 * mean * second + mean**2 * np.sum(weights**2)
        return mean, np.sqrt(np.maximum(variance, 0.0))

    @cached_property
    def exact_kl(self) -> float | None:
        """Exact KL(q ‖ p) where q and the posterior are both Gaussian (:func:`vibench.metrics.accuracy.exact_kl`)."""
        return exact_kl(self.approx, self.reference)

    @cached_property
    def modes(self) -> Modes | None:
        """The task's modes, for a multimodal target."""
        return self.task.extension(Modes)

    @cached_property
    def family_best_elbo(self) -> float | None:
        """The best ELBO q's family can reach on this task, where known (the family says)."""
        return self.approx.family.best_elbo(self.reference)

    @cached_property
    def psis(self) -> PSIS:
        return pareto_smooth(self.log_weights)

    @cached_property
    def draws(self) -> DrawSet:
        if self.approx.has_density:
            values = np.concatenate([np.asarray(z, np.float64) for z, _ in self.q_chunks()])
            return DrawSet(values[None], "iid")
        values = np.asarray(self.approx.family.valid_draws(self.approx.params), np.float64)
        return DrawSet(values, self.approx.family.kind)

    @cached_property
    def _exact_marginals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """q's exact means and sds, for a Gaussian family (dense, or from its 1-blocks)."""
        gaussian = self.approx.gaussian()
        if gaussian is not None:
            mean, cov = (np.asarray(a, np.float64) for a in gaussian)
            return mean, np.sqrt(np.diag(cov))
        blocks = getattr(self.approx.family, "blocks", None)
        marginals = None if blocks is None else blocks(self.approx.params, 1)
        if marginals is None:
            return None
        return np.asarray(marginals.mean, np.float64)[:, 0], np.sqrt(np.asarray(marginals.cov, np.float64)[:, 0, 0])

    @cached_property
    def moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean and sd of q per dimension, with their standard errors (zero when exact)."""
        if self._exact_marginals is not None:
            mean, sd = self._exact_marginals
            zeros = np.zeros_like(mean)
            return mean, sd, zeros, zeros
        if self.approx.has_density:
            return self._q_pass[2].result()
        return draw_moments(*self.draws)

    @cached_property
    def _distances_apply(self) -> bool:
        ref = self.reference
        return ref.sample is not None and ref.std is not None and self.logdensity.dim <= DISTANCE_MAX_DIM

    @cached_property
    def distance_samples(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(approximation, reference)`` samples, each ``min(DISTANCE_DRAWS, n_draws)`` draws.

        Coordinates are divided by the reference sd, so distances are in posterior sd
        units. Density methods give their first draws from q; draws families a
        subsample without replacement, so every method is judged with the same number
        of draws (distances between samples have a floor that depends on it). None
        when the reference has no sampler or sd, the task more than ``DISTANCE_MAX_DIM``
        dimensions, or the method too few draws.
        """
        ref = self.reference
        n = min(DISTANCE_DRAWS, self.n_draws)
        if not self._distances_apply:
            return None
        if self.approx.has_density:
            x = self._q_pass[1]
        else:
            values = self.draws.values.reshape(-1, self.draws.values.shape[-1])
            if values.shape[0] < n:
                return None
            x = values[self.numpy_rng(SUBSAMPLE_STREAM).choice(values.shape[0], n, replace=False)]
        y = np.asarray(ref.sample(self.key_reference, n), np.float64)
        sd = np.asarray(ref.std, np.float64)
        return x / sd, y / sd


def evaluate(
    task: Task,
    logdensity: LogDensity,
    approx: Approximation,
    key,
    n_draws: int = METRIC_DRAWS,
    budget: int = MEMORY_BUDGET,
) -> dict[str, Estimate]:
    """Every metric of :data:`vibench.metrics.records.METRICS` that applies to ``approx`` on
    ``task``, with at most ``budget`` bytes of draws in memory at once."""
    ev = Evaluation(task, logdensity, approx, key, n_draws, budget)
    return {m.name: m.compute(ev) for m in COMPUTED if m.applies(ev)}
