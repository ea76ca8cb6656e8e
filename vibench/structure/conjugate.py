"""Exact Gaussian posteriors: the typed task extension and the closed forms built on it.

A task whose posterior is exactly Gaussian in the flat latent space exposes
:class:`ConjugateGaussian`; closed-form methods (CAVI, natural-gradient SVI) and the
exact reference are built from it, for any data set, so they also serve SBC.

A task whose posterior is a product of conditionally independent K-dim blocks (local
latents, one block per data point: ppca) exposes :class:`BlockGaussian` instead, and
its reference holds a :class:`BlockPosterior` (per-block means and Cholesky factors),
never a dense covariance: every closed form is a sum over blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from vibench.core import Array, Data, Reference
from vibench.harness.precision import in_float64


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
    """An exact :class:`Reference` for a Gaussian posterior with a known evidence, its
    numbers (Cholesky factor, sds, the mean-field optimum) computed in float64 whatever
    the run's precision (:func:`vibench.harness.precision.in_float64`); the sampler and
    log density compute in the run's."""
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    chol, std, meanfield_kl = in_float64(_gaussian_summary, cov)
    mean_run, chol_run = jnp.asarray(mean), jnp.asarray(chol)

    def sample(key: jax.Array, n: int) -> Array:
        return mean_run + jax.random.normal(key, (n, mean_run.shape[0]), dtype=mean_run.dtype) @ chol_run.T

    def log_prob(z: Array) -> Array:
        return mvn_log_prob(z, mean_run, chol_run)

    return Reference(
        provenance=f"{provenance}; computed in float64",
        log_evidence=float(log_evidence),
        mean=mean,
        std=std,
        sample=sample,
        log_prob=log_prob,
        gaussian=(mean, cov),
        meanfield_elbo=float(log_evidence - meanfield_kl),
    )


# --------------------------------------------------------------- independent blocks
@dataclass(frozen=True, eq=False)
class BlockGaussian:
    """``natural_params(data) -> (precision, shift)`` of a posterior that is a product of
    N independent K-dimensional Gaussians, block n being N(P_n⁻¹h_n, P_n⁻¹).

    ``precision`` is (N, K, K), or (K, K) when every block shares it; ``shift`` is
    (N, K). Block n holds the flat latent coordinates n·K, ..., n·K + K − 1 of the
    task's :class:`vibench.core.LogDensity` (a latent site of shape (N, K), row-major).
    Everything below costs O(N·K³) time and O(N·K²) memory: no (NK × NK) matrix is built.
    """

    natural_params: Callable[[Data], tuple[Array, Array]]

    def blocks(self, data: Data) -> tuple[Array, Array]:
        """Per-block precision (N, K, K) and shift (N, K) for ``data``."""
        precision, shift = self.natural_params(data)
        return jnp.broadcast_to(precision, shift.shape + shift.shape[-1:]), shift

    def posterior(self, data: Data) -> tuple[Array, Array]:
        """Posterior means (N, K) and Cholesky factors (N, K, K) of the blocks' covariances."""
        precision, shift = self.blocks(data)
        chol_precision = jnp.linalg.cholesky(precision)
        eye = jnp.eye(shift.shape[-1], dtype=shift.dtype)
        cov = jax.vmap(lambda c: jsl.cho_solve((c, True), eye))(chol_precision)
        mean = jnp.einsum("nij,nj->ni", cov, shift)
        return mean, jnp.linalg.cholesky(cov)


def block_logdet(chol: Array) -> Array:
    """log det of the block-diagonal matrix with Cholesky blocks ``chol`` (N, K, K)."""
    return 2 * jnp.sum(jnp.log(jnp.abs(jnp.diagonal(chol, axis1=-2, axis2=-1))))


def block_meanfield_kl_optimum(precision: Array) -> Array:
    """:func:`meanfield_kl_optimum` of a block-diagonal posterior from its precision blocks
    (N, K, K): the factorized optimum factorizes over blocks, so its KL is their sum."""
    chol = jnp.linalg.cholesky(precision)
    diagonal = jnp.diagonal(precision, axis1=-2, axis2=-1)
    return 0.5 * (jnp.sum(jnp.log(diagonal)) - block_logdet(chol))


@dataclass(frozen=True, eq=False)
class BlockPosterior:
    """An exact posterior that is a product of N independent K-dim Gaussian blocks.

    ``mean`` (N, K); ``chol`` (N, K, K), the blocks' covariance Cholesky factors. The
    flat latent order is block-major (see :class:`BlockGaussian`).
    """

    mean: Array
    chol: Array

    @property
    def block(self) -> int:
        return self.mean.shape[-1]

    def kl(self, mean_q: Array, block_cov_q: Array, logdet_q: Array) -> Array:
        """KL(q ‖ p) for a Gaussian q given by its mean (N, K), the diagonal (K × K) blocks
        of its covariance (N, K, K) and the log det of its whole covariance:

        ½ [Σ_n tr(Σ_n⁻¹ S_n) + Σ_n (m_n − μ_n)ᵀ Σ_n⁻¹ (m_n − μ_n) − NK + Σ_n log det Σ_n − log det S],

        exact for any q (p's precision is block-diagonal, so only q's diagonal blocks
        enter the trace), whether q is mean-field, block-diagonal or dense.
        """
        solve = jax.vmap(lambda c, b: jsl.solve_triangular(c, b, lower=True))
        a = solve(self.chol, jnp.linalg.cholesky(block_cov_q))
        b = solve(self.chol, (mean_q - self.mean)[..., None])
        return 0.5 * (jnp.sum(a**2) + jnp.sum(b**2) - self.mean.size + block_logdet(self.chol) - logdet_q)

    def sample(self, key: jax.Array, n: int) -> Array:
        """``n`` exact draws in the flat latent order, (n, N·K)."""
        eps = jax.random.normal(key, (n,) + self.mean.shape, self.mean.dtype)
        return (self.mean + jnp.einsum("nij,snj->sni", self.chol, eps)).reshape(n, -1)

    def log_prob(self, z: Array) -> Array:
        """log p(z) for one flat point ``z`` (N·K,): the sum of the blocks' log densities."""
        white = jax.vmap(lambda c, b: jsl.solve_triangular(c, b, lower=True))(
            self.chol, z.reshape(self.mean.shape) - self.mean
        )
        return -0.5 * jnp.sum(white**2) - 0.5 * block_logdet(self.chol) - 0.5 * self.mean.size * math.log(2 * math.pi)

    def std(self) -> Array:
        """Marginal posterior sds in the flat latent order."""
        return jnp.sqrt(jnp.sum(self.chol**2, axis=-1)).reshape(-1)

    def log_evidence_identity(self, logp_at_mean: Array) -> Array:
        """:func:`log_evidence_identity` with log det Σ = Σ_n log det Σ_n."""
        return logp_at_mean + 0.5 * (self.mean.size * math.log(2 * math.pi) + block_logdet(self.chol))


def block_reference(
    structure: BlockGaussian, data: Data, log_evidence: float, provenance: str
) -> Reference:
    """An exact :class:`Reference` for a posterior of independent Gaussian blocks, held
    per block (``blocks``); ``gaussian`` (a dense covariance) is left unset."""

    @jax.jit  # one compilation instead of one per eager operation
    def summary(data):
        precision, _ = structure.blocks(data)
        return structure.posterior(data), block_meanfield_kl_optimum(precision)

    (mean, chol), meanfield_kl = in_float64(summary, data)  # the truth, in float64
    posterior = BlockPosterior(jnp.asarray(mean), jnp.asarray(chol))
    return Reference(
        provenance=f"{provenance}; computed in float64",
        log_evidence=float(log_evidence),
        mean=mean.reshape(-1),
        std=in_float64(lambda m, c: BlockPosterior(m, c).std(), mean, chol),
        sample=posterior.sample,
        log_prob=posterior.log_prob,
        blocks=posterior,
        meanfield_elbo=float(log_evidence - meanfield_kl),
    )
