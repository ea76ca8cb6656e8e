"""The typed task extension of conjugate Gaussian mixtures, and the ordering that makes
their components identifiable.

A Bayesian Gaussian mixture (Bishop 2006, §10.2) has weights w ~ Dirichlet(α₀ 1_K) and
components (μ_k, Λ_k) ~ Normal–Wishart(m₀, β₀, W₀, ν₀), i.i.d. over k. Its likelihood
and prior are invariant under the K! relabellings of the components, so its posterior
has K! copies of every mode and the moments of a labelled coordinate (μ_1, say) mean
nothing. The gradient model therefore orders the components by the first coordinate of
their means (the site ``mu`` takes values in :data:`ordered_rows`): its prior is K!
times the exchangeable prior on that chamber, a proper density whose log evidence,
posterior predictive and relabelling-invariant quantities are those of the unordered
model, while every other posterior moment is identified (Stan's manual's recipe for
mixtures). An approximation over unordered labels (CAVI's) is folded onto the chamber:
draws are sorted, and the density of a sorted point is the sum over the K! relabellings
(:func:`fold_log_prob`).

:class:`ConjugateMixture` holds what closed-form methods need: the prior, where the
observations are, and the map between the model's sites and the flat unconstrained
vector of the task's :class:`vibench.core.LogDensity`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import constraints
from numpyro.distributions.transforms import OrderedTransform, ParameterFreeTransform, biject_to

from vibench.core import Array


class _OrderedRows(constraints._SingletonConstraint):
    """Matrices (K, d) whose rows are in increasing order of their first column."""

    event_dim = 2

    def __call__(self, x: Array) -> Array:
        first = x[..., 0]
        return (first[..., 1:] > first[..., :-1]).all(axis=-1)

    def feasible_like(self, prototype: Array) -> Array:
        rows = jnp.arange(float(prototype.shape[-2]))[:, None]
        return jnp.broadcast_to(rows, prototype.shape)


ordered_rows = _OrderedRows()


class OrderedRowsTransform(ParameterFreeTransform):
    """Real (K, d) matrices to :data:`ordered_rows`: :class:`OrderedTransform` on the
    first column (y₁ = x₁, y_k = y_{k−1} + exp(x_k)), the other columns unchanged."""

    domain = constraints.independent(constraints.real, 2)
    codomain = ordered_rows

    def __call__(self, x: Array) -> Array:
        return x.at[..., 0].set(OrderedTransform()(x[..., 0]))

    def _inverse(self, y: Array) -> Array:
        return y.at[..., 0].set(OrderedTransform().inv(y[..., 0]))

    def log_abs_det_jacobian(self, x: Array, y: Array, intermediates=None) -> Array:
        return jnp.sum(x[..., 1:, 0], -1)


@biject_to.register(_OrderedRows)
def _ordered_rows_bijector(constraint) -> OrderedRowsTransform:
    return OrderedRowsTransform()


def sort_components(w: Array, mu: Array, prec_chol: Array) -> tuple[Array, Array, Array]:
    """The components of one point reordered by the first coordinate of their means."""
    order = jnp.argsort(mu[:, 0])
    return w[order], mu[order], prec_chol[order]


def permutations(k: int) -> np.ndarray:
    """All K! orderings of K labels, shape (K!, K)."""
    return np.array(list(itertools.permutations(range(k))), dtype=np.int32)


class ComponentLogProb(Protocol):
    """``log_q(w, mu, prec_chol) -> scalar``: a density over labelled components."""

    def __call__(self, w: Array, mu: Array, prec_chol: Array) -> Array: ...


def fold_log_prob(log_q: ComponentLogProb, w: Array, mu: Array, prec_chol: Array) -> Array:
    """log Σ_σ q(σ·θ) at an ordered point θ: the density, on the chamber of
    :data:`ordered_rows`, of the sorted draws of ``log_q`` (K! terms)."""
    perms = jnp.asarray(permutations(w.shape[0]))
    terms = jax.vmap(lambda p: log_q(w[p], mu[p], prec_chol[p]))(perms)
    return jax.scipy.special.logsumexp(terms)


class FlattenFn(Protocol):
    """``flatten(w, mu, prec_chol) -> z``: constrained sites to the flat unconstrained vector."""

    def __call__(self, w: Array, mu: Array, prec_chol: Array) -> Array: ...


class UnflattenFn(Protocol):
    """``unflatten(z) -> (w, mu, prec_chol, log_jacobian)``: the sites at the flat point
    ``z`` and log |det ∂(sites)/∂z|."""

    def __call__(self, z: Array) -> tuple[Array, Array, Array, Array]: ...


@dataclass(frozen=True, eq=False)
class ConjugateMixture:
    """A Gaussian mixture with a Dirichlet–Normal–Wishart prior and ordered components.

    ``alpha0``: Dirichlet concentration (one value for every weight); ``m0`` (d,),
    ``beta0``, ``w0`` (d, d), ``nu0``: the Normal–Wishart prior of each component,
    μ_k | Λ_k ~ N(m₀, (β₀Λ_k)⁻¹), Λ_k ~ Wishart(W₀, ν₀) (mean ν₀W₀). ``observed``: the
    key of the data holding the points (n, d). The model's latent sites are ``w``
    (simplex, K), ``mu`` (K, d, :data:`ordered_rows`) and ``prec_chol`` (K, d, d), the
    lower Cholesky factor of Λ_k; ``flatten`` / ``unflatten`` map them to and from the
    flat unconstrained vector of the task's log density.
    """

    k: int
    alpha0: float
    m0: Array
    beta0: float
    w0: Array
    nu0: float
    flatten: FlattenFn
    unflatten: UnflattenFn
    observed: str = "x"
