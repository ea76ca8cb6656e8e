"""A method's posterior predictive against a stored reference's (tasks that declare
:class:`vibench.structure.predictive_draw.PredictiveDraw` and whose reference has draws).

For models whose parameter-space moments are not comparable across modes (a neural
net's hidden units permute and flip sign), the reference is used only through its
predictive: with the reference's draws z'_1 … z'_S and the approximation's z_1 … z_S,

- ``test_lpd_gap``: (1/n) Σ_i [lpd_ref_i − lpd_q_i], the reference's minus the method's
  log pointwise predictive density (:mod:`vibench.metrics.predictive`), paired over test
  points (standard error sd/√n of the per-point differences). Positive: the method
  predicts the test points worse than the reference.
- ``predictive_w2``: (1/n) Σ_i W₂(p_q(y*_i), p_ref(y*_i)), the Wasserstein-2 distance
  between the two predictive distributions of each test target (as in the NeurIPS 2021
  approximate-inference competition), in the target's units, from one target draw per
  parameter draw on each side: the 1-D W₂ of two equal samples is
  sqrt(mean((sorted a − sorted b)²)). Finite samples put a floor of order sd/√S under
  it (the same S for every method, :data:`DRAWS`).

:func:`predictive_reference` loads a stored artifact (:mod:`vibench.reference.artifact`)
as a reference with draws only: no means or sds, so the parameter-space metrics
(``mean_error``, ``std_error``, W1, MMD) do not apply.
"""

from __future__ import annotations

import math
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import jax
import numpy as np

from vibench.core import Reference, Task
from vibench.metrics.estimates import Estimate
from vibench.metrics.predictive import log_mean_exp, pointwise_predictions
from vibench.reference.artifact import load_reference
from vibench.structure.predictive import Predictive
from vibench.structure.predictive_draw import PredictiveDraw

if TYPE_CHECKING:
    from vibench.metrics.evaluation import Evaluation

DRAWS = 2000
"""Parameter draws per side (at most; fewer when a method has fewer)."""
SUBSAMPLE_STREAM = 7
"""The evaluation's NumPy stream that subsamples a draws method's draws."""


def predictive_reference(path: Path | str, task: Task, accept_failed: bool = False) -> Reference:
    """The stored reference at ``path`` for ``task`` with its draws only (see the module doc);
    refused as :func:`vibench.reference.artifact.load_reference` refuses."""
    stored = load_reference(path, task, accept_failed=accept_failed)
    return Reference(provenance=f"{stored.provenance}; used through the posterior predictive only", sample=stored.sample)


class Paired(NamedTuple):
    """Equal-size parameter draws of the approximation and of the reference, (S, dim)."""

    approx: np.ndarray
    reference: np.ndarray


_PAIRED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def paired_draws(ev: Evaluation) -> Paired:
    """:class:`Paired` draws of ``ev``, made once per evaluation."""
    if ev not in _PAIRED:
        values = ev.draws.values.reshape(-1, ev.draws.values.shape[-1])
        n = min(DRAWS, values.shape[0])
        if values.shape[0] > n:
            values = values[ev.numpy_rng(SUBSAMPLE_STREAM).choice(values.shape[0], n, replace=False)]
        reference = np.asarray(ev.reference.sample(ev.key_reference, n), np.float32)
        _PAIRED[ev] = Paired(values.astype(np.float32), reference)
    return _PAIRED[ev]


def _mean_over_points(values: np.ndarray) -> Estimate:
    se = float(np.std(values, ddof=1) / math.sqrt(values.size)) if values.size > 1 else math.nan
    return Estimate(float(np.mean(values)), se)


def test_lpd_gap(ev: Evaluation) -> Estimate:
    """Reference minus method log pointwise predictive density, nats per test point."""
    predictive, held_out = ev.task.extension(Predictive), ev.task.held_out
    draws = paired_draws(ev)
    lpd = [log_mean_exp(pointwise_predictions(predictive, z, held_out).log_lik, axis=0) for z in draws]
    return _mean_over_points(lpd[1] - lpd[0])


def _target_draws(draw, z: np.ndarray, held_out, key: jax.Array) -> np.ndarray:
    """One target draw per parameter draw: (S, n_test)."""
    keys = jax.random.split(key, z.shape[0])
    return np.asarray(jax.jit(jax.vmap(draw.draw, (0, None, 0)))(z, held_out, keys), np.float64)


def w2_per_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1-D Wasserstein-2 distance between the equal samples ``a[:, i]`` and ``b[:, i]`` per column."""
    return np.sqrt(np.mean((np.sort(a, axis=0) - np.sort(b, axis=0)) ** 2, axis=0))


def predictive_w2(ev: Evaluation) -> Estimate:
    """Mean over test points of the W₂ distance between the predictive distributions."""
    draw, held_out = ev.task.extension(PredictiveDraw), ev.task.held_out
    draws = paired_draws(ev)
    key_q, key_ref = jax.random.split(jax.random.fold_in(ev.key_reference, 1))
    a = _target_draws(draw, draws.approx, held_out, key_q)
    b = _target_draws(draw, draws.reference, held_out, key_ref)
    return _mean_over_points(w2_per_point(a, b))


def applies(ev: Evaluation) -> bool:
    """The task predicts and draws its test targets, and the reference has draws."""
    task = ev.task
    return (
        task.held_out is not None
        and task.extension(Predictive) is not None
        and task.extension(PredictiveDraw) is not None
        and ev.reference.sample is not None
    )
