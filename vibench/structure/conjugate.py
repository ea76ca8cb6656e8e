"""Exact Gaussian posteriors: the typed task extension and the closed forms built on it.

A task whose posterior is exactly Gaussian in the flat latent space exposes
:class:`ConjugateGaussian`; closed-form methods (CAVI, natural-gradient SVI) and the
exact reference are built from it, for any data set, so they also serve SBC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from vibench.core import Array, Data, Reference


@dataclass(frozen=True, eq=False)
class ConjugateGaussian:
    """``natural_params(data) -> (precision, shift)``: the posterior is N(P⁻¹h, P⁻¹).

    In the flat latent order of the task's :class:`vibench.core.LogDensity`.
    """

    natural_params: Callable[[Data], tuple[Array, Array]]

    def posterior(self, data: Data) -> tuple[Array, Array]:
        """Posterior ``(mean, cov)`` for ``data``."""
        precision, shift = self.natural_params(data)
        chol = jnp.linalg.cholesky(precision)
        mean = jsl.cho_solve((chol, True), shift)
        cov = jsl.cho_solve((chol, True), jnp.eye(precision.shape[0], dtype=precision.dtype))
        return mean, cov


def mvn_log_prob(z: Array, mean: Array, chol: Array) -> Array:
    """log N(z; mean, L Lᵀ) for lower-triangular ``chol``."""
    white = jsl.solve_triangular(chol, z - mean, lower=True)
    half_logdet = jnp.sum(jnp.log(jnp.abs(jnp.diag(chol))))
    return -0.5 * jnp.sum(white**2) - half_logdet - 0.5 * mean.shape[0] * math.log(2 * math.pi)


def gaussian_kl(mean_q: Array, cov_q: Array, mean_p: Array, cov_p: Array) -> Array:
    """KL(N(mean_q, cov_q) ‖ N(mean_p, cov_p))."""
    chol_p = jnp.linalg.cholesky(cov_p)
    chol_q = jnp.linalg.cholesky(cov_q)
    a = jsl.solve_triangular(chol_p, chol_q, lower=True)
    b = jsl.solve_triangular(chol_p, mean_q - mean_p, lower=True)
    logdet = 2 * (jnp.sum(jnp.log(jnp.diag(chol_p))) - jnp.sum(jnp.log(jnp.diag(chol_q))))
    return 0.5 * (jnp.sum(a**2) + jnp.sum(b**2) - mean_q.shape[0] + logdet)


def meanfield_kl_optimum(cov: Array) -> Array:
    """min KL(q ‖ N(μ, Σ)) over factorized Gaussians q: ½(Σᵢ log Λᵢᵢ − log det Λ), Λ = Σ⁻¹.

    The optimum is q = N(μ, diag(1/Λᵢᵢ)) (Turner & Sahani 2011; Bishop 2006, §10.1.2).
    """
    precision = jnp.linalg.inv(cov)
    _, logdet_precision = jnp.linalg.slogdet(precision)
    return 0.5 * (jnp.sum(jnp.log(jnp.diag(precision))) - logdet_precision)


def log_evidence_identity(logp_at_mean: Array, cov: Array) -> Array:
    """log p(x) = log p(x, μ) − log N(μ; μ, Σ), valid for an exactly Gaussian posterior."""
    _, logdet = jnp.linalg.slogdet(cov)
    return logp_at_mean + 0.5 * (cov.shape[0] * math.log(2 * math.pi) + logdet)


@jax.jit
def _gaussian_summary(cov: Array) -> tuple[Array, Array, Array]:
    """Cholesky factor, marginal sds and the mean-field KL optimum, compiled together."""
    return jnp.linalg.cholesky(cov), jnp.sqrt(jnp.diag(cov)), meanfield_kl_optimum(cov)


def gaussian_reference(mean: Array, cov: Array, log_evidence: float, provenance: str) -> Reference:
    """An exact :class:`Reference` for a Gaussian posterior with a known evidence."""
    chol, std, meanfield_kl = _gaussian_summary(cov)

    def sample(key: jax.Array, n: int) -> Array:
        return mean + jax.random.normal(key, (n, mean.shape[0]), dtype=mean.dtype) @ chol.T

    def log_prob(z: Array) -> Array:
        return mvn_log_prob(z, mean, chol)

    return Reference(
        provenance=provenance,
        log_evidence=float(log_evidence),
        mean=mean,
        std=std,
        sample=sample,
        log_prob=log_prob,
        gaussian=(mean, cov),
        meanfield_elbo=float(log_evidence - meanfield_kl),
    )
