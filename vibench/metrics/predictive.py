"""Held-out prediction (tasks with test data and a :class:`vibench.structure.predictive.Predictive`
extension): log pointwise predictive density, RMSE and accuracy over the approximation's draws.

With draws z_1 … z_S of the approximation (q's draws, or a method's own chains or
particles: :attr:`vibench.metrics.evaluation.Evaluation.draws`) and test points
y*_1 … y*_n, the log pointwise predictive density (Gelman, Hwang & Vehtari 2014,
Statistics and Computing 24(6)) is

    lpd_i = log (1/S) Σ_s p(y*_i | z_s),        test_lpd = (1/n) Σ_i lpd_i,

computed with a log-mean-exp that subtracts each point's largest term (no underflow
where p(y*_i | z_s) is far below the smallest float). Its standard error is that of a
mean over test points, sd(lpd_i)/√n: the spread a different test set would give, the
error papers report beside a test log-likelihood. The draws add a Monte Carlo error
on top (small next to it for thousands of draws) and a downward bias of about
Var_s[p(y*_i | z_s)] / (2 S p(y*_i)²) per point (Jensen's inequality on the log).

The draws are evaluated in chunks sized so that a chunk's per-draw outputs stay under
:data:`CHUNK_SCALARS` numbers: memory holds the S × n log densities, never S × n × (a
model's intermediates or classes). The posterior predictive mean (regression) or class
probabilities (classification) are summed over draws chunk by chunk.
"""

from __future__ import annotations

import math
import weakref
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

from vibench.metrics.estimates import Estimate
from vibench.structure.predictive import Predictive

if TYPE_CHECKING:
    from vibench.metrics.evaluation import Evaluation

CHUNK_SCALARS = 2**22
"""The most per-draw output numbers (log densities and predictions) one chunk of draws makes."""


class PointwisePredictions(NamedTuple):
    """An approximation's predictions of the test points: ``log_lik`` (S, n), log p(y*_i | z_s)
    at each draw; ``mean`` the posterior predictive mean E_q[E[y*_i | z]] (n,) or class
    probabilities (n, n_classes), averaged over the draws (None without ``Predictive.mean``)."""

    log_lik: np.ndarray
    mean: np.ndarray | None


def log_mean_exp(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """log (1/S) Σ_s exp(values_s) along ``axis``, in float64, without underflow or overflow."""
    values = np.asarray(values, np.float64)
    return logsumexp(values, axis=axis) - math.log(values.shape[axis])


def chunk_size(n_draws: int, per_draw: int) -> int:
    """Draws per chunk: as many as keep ``chunk × per_draw ≤ CHUNK_SCALARS``, at least 1, at most all."""
    return max(1, min(n_draws, CHUNK_SCALARS // max(per_draw, 1)))


@lru_cache(maxsize=32)
def _compiled_predictions(predictive: Predictive):
    """``run(z_chunks, weights, held_out) -> (log_lik (chunks·chunk, n), weighted sum of means)``,
    jitted once per extension: a scan over chunks of draws, vmapped within each chunk;
    ``weights`` are 1 for real draws and 0 for the padding of the last chunk."""
    log_lik, mean = predictive.log_lik, predictive.mean

    @jax.jit
    def run(z_chunks, weights, held_out):
        def step(total, inputs):
            z, w = inputs
            values = jax.vmap(log_lik, (0, None))(z, held_out)
            if mean is None:
                return total, values
            return total + jnp.tensordot(w, jax.vmap(mean, (0, None))(z, held_out), axes=1), values

        if mean is None:
            init = jnp.zeros(())
        else:
            shape = jax.eval_shape(mean, z_chunks[0, 0], held_out)
            init = jnp.zeros(shape.shape, shape.dtype)
        total, values = jax.lax.scan(step, init, (z_chunks, weights))
        return values.reshape(-1, values.shape[-1]), total

    return run


def pointwise_predictions(predictive: Predictive, draws: np.ndarray, held_out) -> PointwisePredictions:
    """:class:`PointwisePredictions` of the draws ``(S, dim)`` on the test points ``held_out``."""
    n_draws = draws.shape[0]
    per_draw = math.prod(jax.eval_shape(predictive.log_lik, draws[0], held_out).shape)
    if predictive.mean is not None:
        per_draw += math.prod(jax.eval_shape(predictive.mean, draws[0], held_out).shape)
    chunk = chunk_size(n_draws, per_draw)
    n_chunks = -(-n_draws // chunk)
    padded = np.pad(draws, ((0, n_chunks * chunk - n_draws), (0, 0)), mode="edge")
    weights = (np.arange(n_chunks * chunk) < n_draws).astype(draws.dtype)
    run = _compiled_predictions(predictive)
    log_lik, total = run(
        padded.reshape(n_chunks, chunk, -1), weights.reshape(n_chunks, chunk), held_out
    )
    mean = None if predictive.mean is None else np.asarray(total, np.float64) / n_draws
    return PointwisePredictions(np.asarray(log_lik, np.float64)[:n_draws], mean)


_PREDICTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _predictions(ev: Evaluation) -> PointwisePredictions:
    """The evaluation's draws' predictions, computed once per evaluation for all its metrics."""
    if ev not in _PREDICTIONS:
        values = ev.draws.values
        draws = values.reshape(-1, values.shape[-1]).astype(np.float32)
        _PREDICTIONS[ev] = pointwise_predictions(_extension(ev), draws, ev.task.held_out)
    return _PREDICTIONS[ev]


def _extension(ev: Evaluation) -> Predictive:
    return ev.task.extension(Predictive)


def _mean_over_points(values: np.ndarray) -> Estimate:
    """Mean over test points and its standard error sd/√n (NaN for a single point)."""
    se = float(np.std(values, ddof=1) / math.sqrt(values.size)) if values.size > 1 else math.nan
    return Estimate(float(np.mean(values)), se)


def _targets(ev: Evaluation) -> np.ndarray:
    return np.asarray(ev.task.held_out[_extension(ev).target], np.float64)


# --------------------------------------------------------------------- metrics
def test_lpd(ev: Evaluation) -> Estimate:
    """Mean log pointwise predictive density of the test points (nats per point), see the module doc."""
    return _mean_over_points(log_mean_exp(_predictions(ev).log_lik, axis=0))


def test_lpd_exact(ev: Evaluation) -> Estimate:
    """The exact posterior's mean log predictive density of the test points, where the task
    knows it (its standard error, as :func:`test_lpd`'s, is the spread over test points)."""
    exact = _extension(ev).exact_lpd(ev.task.held_out)
    return _mean_over_points(np.asarray(exact, np.float64))


def test_rmse(ev: Evaluation) -> Estimate:
    """Root mean squared error of the posterior predictive mean at the test points.

    With squared errors e_i over n points, RMSE = sqrt(mean e); its standard error by the
    delta method is se(mean e) / (2 RMSE), se(mean e) = sd(e)/√n (0 when every error is 0).
    """
    squared = (_predictions(ev).mean - _targets(ev)) ** 2
    mse = _mean_over_points(squared)
    rmse = math.sqrt(mse.value)
    return Estimate(rmse, mse.stderr / (2 * rmse) if rmse > 0 else 0.0)


def test_accuracy(ev: Evaluation) -> Estimate:
    """Fraction of test points whose most probable class under the posterior predictive
    (class probabilities averaged over the draws) is the observed one; se over points."""
    predicted = np.argmax(_predictions(ev).mean, axis=-1)
    return _mean_over_points((predicted == _targets(ev)).astype(np.float64))


# --------------------------------------------------------------------- when they apply
def applies_lpd(ev: Evaluation) -> bool:
    return ev.task.held_out is not None and _extension(ev) is not None


def applies_exact(ev: Evaluation) -> bool:
    return applies_lpd(ev) and _extension(ev).exact_lpd is not None


def applies_rmse(ev: Evaluation) -> bool:
    return applies_lpd(ev) and _extension(ev).kind == "regression"


def applies_accuracy(ev: Evaluation) -> bool:
    return applies_lpd(ev) and _extension(ev).kind == "classification"
