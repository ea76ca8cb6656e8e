"""Data subsampling: the typed task extensions minibatch methods (stochastic VI) need.

A task whose N observations are conditionally independent given its global latents
(and, if it has any, each point's own *local* latents) declares :class:`Subsample`.
A minibatch S of data points then gives the unbiased estimate of the log joint

    log p̂_S(x, z) = log p(g) + (N/|S|) Σ_{i∈S} [log p(z_i | g) + log p(x_i | z_i, g)]

(Hoffman, Blei, Wang & Paisley 2013; Titsias & Lázaro-Gredilla 2014), g the global
latents and z_i point i's local ones (none for a model with global latents only),
evaluated from the task's own model restricted to the rows S, with every site but the
global latents (and their log-Jacobians) scaled by N/|S|: the model stays the one
source of truth for the density, and with S = all N points log p̂_S is the task's log
joint. :func:`minibatch_logp` evaluates it for global latents only;
:func:`vibench.structure.local.local_minibatch_logp` with local latents.

A task whose posterior is also exactly Gaussian, with natural parameters that add up
over data points (prior + Σ_i contribution_i), declares :class:`MinibatchConjugate`
for natural-gradient SVI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import numpyro
from numpyro.infer.util import potential_energy

from vibench.core import Array, Data, LogDensity, ModelFn


@dataclass(frozen=True, eq=False)
class Subsample:
    """The task's data are ``size`` points, conditionally independent given the global
    latents and each point's own local latents.

    ``per_datum``: the keys of the data leaves indexed by data point along axis 0 (all
    other leaves are shared by every point). ``local``: the latent sites indexed by data
    point along axis 0 (shape ``(size, ...)``; ppca's ``z``); every other latent site is
    global. ``restrict(index)``: the task's model of the points ``index`` alone, run on
    ``select(data, index)``; with ``index = arange(size)`` it is the task's model. Its
    global latent sites have the same shapes for every ``index``; its local ones have
    ``len(index)`` rows, those of the points ``index``.
    """

    size: int
    per_datum: tuple[str, ...]
    restrict: Callable[[Array], ModelFn]
    local: tuple[str, ...] = ()

    def select(self, data: Data, index: Array) -> Data:
        """The data of the points ``index``."""
        return {key: value[index] if key in self.per_datum else value for key, value in data.items()}


@dataclass(frozen=True, eq=False)
class MinibatchConjugate:
    """An exact Gaussian posterior whose natural parameters add up over data points.

    ``prior``: the prior's natural parameters (precision, shift) in the flat latent
    order of the task's :class:`vibench.core.LogDensity`. ``contribution(batch,
    index)``: the summed (precision, shift) of the points ``index`` (``batch`` is
    :meth:`Subsample.select` of the data), so the posterior's natural parameters are
    ``prior + contribution(data, arange(N))``.
    """

    prior: tuple[Array, Array]
    contribution: Callable[[Data, Array], tuple[Array, Array]]

    def estimate(self, batch: Data, index: Array, size: int) -> tuple[Array, Array]:
        """Unbiased estimate of the posterior's natural parameters from the points ``index``:
        prior + (N/|S|) · contribution(S)."""
        precision, shift = self.contribution(batch, index)
        weight = size / index.shape[0]
        return self.prior[0] + weight * precision, self.prior[1] + weight * shift


def sample_index(key: jax.Array, size: int, batch_size: int) -> Array:
    """A minibatch: ``batch_size`` of ``size`` points, uniformly without replacement."""
    return jax.random.choice(key, size, (batch_size,), replace=False)


class scale_per_datum(numpyro.handlers.scale):
    """Scales the log density of every sample site (observations, local latents, their
    log-Jacobian factors) except the ``global_sites`` and their log-Jacobian factors
    (the ``_{name}_log_det`` factors of :func:`numpyro.infer.util.potential_energy`)."""

    def __init__(self, fn: ModelFn, scale: float, global_sites: tuple[str, ...]) -> None:
        self.unscaled = frozenset(global_sites) | {f"_{name}_log_det" for name in global_sites}
        super().__init__(fn, scale=scale)

    def process_message(self, msg) -> None:
        if msg["type"] == "sample" and msg["name"] not in self.unscaled:
            super().process_message(msg)


def minibatch_logp(
    subsample: Subsample, logdensity: LogDensity
) -> Callable[[Array, Data, Array], Array]:
    """``logp(z, batch, index)``: log p(z) + (N/|S|) log p(x_S | z) at the flat unconstrained
    ``z`` (log-Jacobian included, as :attr:`LogDensity.logp`), for ``batch =
    subsample.select(data, index)``; ``index`` has a static size |S|. Global latents
    only (a task with local latents: :func:`vibench.structure.local.local_minibatch_logp`)."""
    if subsample.local:
        raise ValueError(
            f"minibatch_logp needs global latents only; this task has local latents {subsample.local} "
            "(use vibench.structure.local.local_minibatch_logp)"
        )
    global_sites = tuple(logdensity.site_shapes)

    def logp(z: Array, batch: Data, index: Array) -> Array:
        model = scale_per_datum(subsample.restrict(index), subsample.size / index.shape[0], global_sites)
        return -potential_energy(model, (batch,), {}, logdensity.unflatten(z))

    return logp
