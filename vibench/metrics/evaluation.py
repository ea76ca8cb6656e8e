"""One evaluation of an approximation: its draws and the quantities every metric shares.

Everything is drawn once, lazily, from keys split off the evaluation's key, so a
metric's value is a deterministic function of (task, approximation, key).
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import NamedTuple

import jax
import numpy as np

from vibench.core import Approximation, Family, LogDensity, LogJointFn, Task
from vibench.families.draws import DrawKind
from vibench.metrics.estimates import Estimate, draw_moments
from vibench.metrics.importance import PSIS, pareto_smooth
from vibench.metrics.records import COMPUTED, METRIC_DRAWS
from vibench.structure.modes import Modes

DISTANCE_DRAWS = 2000
SUBSAMPLE_STREAM, DIRECTIONS_STREAM = 0, 1


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


class DrawSet(NamedTuple):
    """An approximation's draws, shape (chains, n, dim), and what they are (iid, MCMC
    or particles: :class:`vibench.families.Draws`)."""

    values: np.ndarray
    kind: DrawKind


class Evaluation:
    """Draws from an approximation and the quantities every metric shares.

    ``log_weights`` are log p(x, z) − log q(z) at ``n_draws`` draws z from q;
    ``psis`` their Pareto-smoothed version; ``draws`` the approximation's draws
    (those from q, or a draws family's own); ``distance_samples`` equal-size,
    standardized samples of the approximation and of the reference.
    """

    def __init__(
        self, task: Task, logdensity: LogDensity, approx: Approximation, key, n_draws: int
    ):
        self.task = task
        self.reference = task.reference
        self.approx = approx
        self.logdensity = logdensity
        self.n_draws = n_draws
        self.key_q, self.key_reference, key_numpy = jax.random.split(key, 3)
        self._numpy_seed = [int(word) for word in np.asarray(jax.random.key_data(key_numpy))]

    def numpy_rng(self, stream: int) -> np.random.Generator:
        """An independent NumPy generator per ``stream``, seeded from the evaluation's key
        (for draws the harness makes itself: no JAX compilation for a handful of numbers)."""
        return np.random.default_rng([*self._numpy_seed, stream])

    @cached_property
    def _q_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """``n_draws`` draws z from q and their log importance ratios."""
        sample = _compiled_q_sample(self.approx.family, self.logdensity.logp, self.n_draws)
        z, log_weights = sample(self.approx.params, self.task.data, self.key_q)
        return np.asarray(z, np.float64), np.asarray(log_weights, np.float64)

    @property
    def log_weights(self) -> np.ndarray:
        return self._q_sample[1]

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
            return DrawSet(self._q_sample[0][None], "iid")
        values = np.asarray(self.approx.family.valid_draws(self.approx.params), np.float64)
        return DrawSet(values, self.approx.family.kind)

    @cached_property
    def moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean and sd of q per dimension, with their standard errors (zero when exact)."""
        gaussian = self.approx.gaussian()
        if gaussian is not None:
            mean, cov = (np.asarray(a, np.float64) for a in gaussian)
            zeros = np.zeros_like(mean)
            return mean, np.sqrt(np.diag(cov)), zeros, zeros
        return draw_moments(*self.draws)

    @cached_property
    def distance_samples(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(approximation, reference)`` samples, each ``min(DISTANCE_DRAWS, n_draws)`` draws.

        Coordinates are divided by the reference sd, so distances are in posterior sd
        units. Density methods give their first draws from q; draws families a
        subsample without replacement, so every method is judged with the same number
        of draws (distances between samples have a floor that depends on it). None
        when the reference has no sampler or sd, or the method too few draws.
        """
        ref = self.reference
        n = min(DISTANCE_DRAWS, self.n_draws)
        if ref.sample is None or ref.std is None:
            return None
        if self.approx.has_density:
            x = self.draws.values[0, :n]
        else:
            values = self.draws.values.reshape(-1, self.draws.values.shape[-1])
            if values.shape[0] < n:
                return None
            x = values[self.numpy_rng(SUBSAMPLE_STREAM).choice(values.shape[0], n, replace=False)]
        y = np.asarray(ref.sample(self.key_reference, n), np.float64)
        sd = np.asarray(ref.std, np.float64)
        return x / sd, y / sd


def evaluate(
    task: Task, logdensity: LogDensity, approx: Approximation, key, n_draws: int = METRIC_DRAWS
) -> dict[str, Estimate]:
    """Every metric of :data:`vibench.metrics.records.METRICS` that applies to ``approx`` on ``task``."""
    ev = Evaluation(task, logdensity, approx, key, n_draws)
    return {m.name: m.compute(ev) for m in COMPUTED if m.applies(ev)}
