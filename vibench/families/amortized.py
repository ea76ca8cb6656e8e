"""Amortized Gaussian families: q(z | x) = Π_n N(z_n; μ_φ(x_n), L_φ(x_n) L_φ(x_n)ᵀ) from an
encoder with parameters φ, for tasks whose latents are all local (one row per data point,
:mod:`vibench.structure.local`).

Design: the family is static and hashable, as every family (its encoder's shape and the
task's :class:`vibench.structure.local.LatentLayout`); its ``params`` are
``{"encoder": φ, "inputs": X}``, the encoder's parameters *and* the per-datum inputs
X (N, D_in) it encodes (:func:`encoder_inputs`). Bound together, they are a plain
family over the flat latent vector of those N points: ``sample(params, key, n) -> (n,
dim)``, ``log_prob``, ``sample_and_log_prob`` and ``gaussian()`` (block-diagonal, one
K × K block per point) behave as any Gaussian family's, so every metric works unchanged.
:meth:`AmortizedGaussian.bind` swaps the inputs: the encoder applied to other points
(held-out data it never saw) is the approximation of their latents.

Encoders: :class:`LinearEncoder`, μ(x) = xA + c with one shared full covariance, which
holds every posterior that is linear-Gaussian in x_n (ppca's: N(M⁻¹Wᵀ(x_n − b), σ²M⁻¹));
:class:`MLPEncoder`, one tanh hidden layer giving each point its mean and full Cholesky
factor. Optimizers must move φ only, never the inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from vibench.core import Array, Data, Reference
from vibench.families.gaussian import DENSE_MAX_DIM, BlockMoments, standard_normal, standard_normal_rows
from vibench.structure.local import LatentLayout
from vibench.structure.minibatch import Subsample

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def encoder_inputs(subsample: Subsample, data: Data) -> Array:
    """X (N, D_in): each point's per-datum data leaves (``subsample.per_datum``), flattened
    and concatenated."""
    return jnp.concatenate([data[key].reshape(subsample.size, -1) for key in subsample.per_datum], axis=1)


def _lower(log_diag: Array, lower: Array) -> Array:
    """The Cholesky factor with diagonal exp(log_diag) and strict lower part of ``lower``."""
    k = log_diag.shape[-1]
    return jnp.tril(lower, -1) + jnp.exp(log_diag)[..., None] * jnp.eye(k, dtype=log_diag.dtype)


@dataclass(frozen=True)
class LinearEncoder:
    """μ(x) = xA + c; one covariance L Lᵀ shared by every point (L: diagonal exp(log_diag))."""

    inputs: int
    latents: int

    def init(self, key: jax.Array, scale: float) -> dict[str, Array]:
        """q(z_n | x_n) = N(0, scale² I) for every x_n."""
        d, k = self.inputs, self.latents
        return {
            "weight": jnp.zeros((d, k)),
            "bias": jnp.zeros(k),
            "log_diag": jnp.full(k, math.log(scale)),
            "lower": jnp.zeros((k, k)),
        }

    def __call__(self, phi, x: Array) -> tuple[Array, Array, Array]:
        """(mean (N, K), log_diag (N, K), Cholesky factors (N, K, K)) of the points x (N, D_in)."""
        n = x.shape[0]
        tril = _lower(phi["log_diag"], phi["lower"])
        return (
            x @ phi["weight"] + phi["bias"],
            jnp.broadcast_to(phi["log_diag"], (n, self.latents)),
            jnp.broadcast_to(tril, (n, self.latents, self.latents)),
        )


@dataclass(frozen=True)
class MLPEncoder:
    """One tanh hidden layer of width ``hidden``, then each point's mean, log-diagonal and
    strict lower part of its Cholesky factor (a full covariance per point)."""

    inputs: int
    latents: int
    hidden: int

    def init(self, key: jax.Array, scale: float) -> dict[str, Array]:
        """Hidden weights N(0, 1/D_in) (LeCun); a zero output layer with bias log(scale) on
        the log-diagonal, so q(z_n | x_n) = N(0, scale² I) for every x_n at the start."""
        k = self.latents
        out = 2 * k + k * (k - 1) // 2
        bias = jnp.zeros(out).at[k : 2 * k].set(math.log(scale))
        return {
            "hidden_weight": jax.random.normal(key, (self.inputs, self.hidden)) / math.sqrt(self.inputs),
            "hidden_bias": jnp.zeros(self.hidden),
            "weight": jnp.zeros((self.hidden, out)),
            "bias": bias,
        }

    def __call__(self, phi, x: Array) -> tuple[Array, Array, Array]:
        k = self.latents
        h = jnp.tanh(x @ phi["hidden_weight"] + phi["hidden_bias"])
        out = h @ phi["weight"] + phi["bias"]
        mean, log_diag = out[:, :k], out[:, k : 2 * k]
        rows, cols = jnp.tril_indices(k, -1)
        lower = jnp.zeros((x.shape[0], k, k), out.dtype).at[:, rows, cols].set(out[:, 2 * k :])
        return mean, log_diag, _lower(log_diag, lower)


Encoder = LinearEncoder | MLPEncoder


@dataclass(frozen=True)
class AmortizedGaussian:
    """q(z | X) = Π_n N(z_n; μ_φ(x_n), L_n L_nᵀ) over the flat latent vector of ``layout``
    (every site local); params ``{"encoder": φ, "inputs": X}`` (module doc)."""

    encoder: Encoder
    layout: LatentLayout
    name: str = "amortized"
    has_density: bool = True

    def __post_init__(self) -> None:
        if self.layout.n_global:
            raise ValueError(
                f"an amortized family needs every latent local; global: {self.layout.global_sites}"
            )
        if self.layout.per_point != self.encoder.latents:
            raise ValueError(
                f"the encoder gives {self.encoder.latents} latents per point; the task has "
                f"{self.layout.per_point}"
            )

    def init(self, key: jax.Array, inputs: Array, scale: float) -> dict:
        return self.bind({"encoder": self.encoder.init(key, scale)}, inputs)

    def bind(self, params, inputs: Array) -> dict:
        """``params`` with the encoder applied to the points ``inputs`` (N', D_in) instead."""
        if inputs.ndim != 2 or inputs.shape[1] != self.encoder.inputs:
            raise ValueError(f"inputs must have shape (points, {self.encoder.inputs}); got {inputs.shape}")
        return {"encoder": params["encoder"], "inputs": inputs}

    def _points(self, params) -> tuple[Array, Array, Array]:
        return self.encoder(params["encoder"], params["inputs"])

    def _flat(self, local: Array) -> Array:
        return self.layout.join(local[..., 0, :0], local)

    def sample(self, params, key, n):
        return self.sample_and_log_prob(params, key, n)[0]

    def sample_and_log_prob(self, params, key, n, stick=False):
        """Draws and log q from the noise that made them; ``stick``: log q with φ held fixed
        (its gradient flows through the draws only, as the Gaussian families')."""
        mean = self._points(params)[0]
        return self._from_noise(params, standard_normal(key, (n,) + mean.shape, mean.dtype), stick)

    def sample_rows(self, params, key, start, count):
        """Rows ``start`` to ``start + count`` of ``sample_and_log_prob(params, key, n)``."""
        n, k = params["inputs"].shape[0], self.encoder.latents
        eps = standard_normal_rows(key, start, count, n * k, params["inputs"].dtype)
        return self._from_noise(params, eps.reshape(count, n, k), False)

    def _from_noise(self, params, eps: Array, stick: bool) -> tuple[Array, Array]:
        mean, log_diag, tril = self._points(params)
        local = mean + jnp.einsum("pij,spj->spi", tril, eps)
        if stick:
            fixed_mean, log_diag, fixed_tril = self._points(jax.lax.stop_gradient(params))
            offset = local - fixed_mean
            eps = jax.lax.stop_gradient(eps) + _solve(fixed_tril, offset - jax.lax.stop_gradient(offset))
        return self._flat(local), _log_density(eps, log_diag)

    def log_prob(self, params, z):
        mean, log_diag, tril = self._points(params)
        _, local = self.layout.split(z)
        return _log_density(_solve(tril, local - mean), log_diag)

    def entropy(self, params):
        _, log_diag, _ = self._points(params)
        return jnp.sum(log_diag) + log_diag.size * (0.5 + _HALF_LOG_2PI)

    def gaussian(self, params):
        """(mean, cov) over the flat vector, cov block-diagonal (point n's block L_n L_nᵀ);
        None above ``DENSE_MAX_DIM`` dimensions (then :meth:`blocks`)."""
        mean, _, tril = self._points(params)
        n, k = mean.shape
        if n * k > DENSE_MAX_DIM:
            return None
        dense = jnp.einsum("pij,pq->piqj", _covariances(tril), jnp.eye(n, dtype=mean.dtype)).reshape(
            n * k, n * k
        )
        order = self._flat(jnp.arange(n * k).reshape(n, k))  # flat position -> per-point position
        return self._flat(mean), dense[order][:, order]

    def blocks(self, params, size: int) -> BlockMoments | None:
        """q's mean and covariance blocks of ``size`` consecutive flat coordinates: the
        points' own blocks (``size`` = K, when the flat vector is point-major: one local
        site) or the marginals (``size`` = 1); None for other sizes."""
        mean, log_diag, tril = self._points(params)
        logdet = 2 * jnp.sum(log_diag)
        if size == 1:
            var = self._flat(jnp.sum(tril**2, axis=-1))
            return BlockMoments(self._flat(mean)[:, None], var[:, None, None], logdet)
        if size == self.encoder.latents and len(self.layout.sites) == 1:
            return BlockMoments(mean, _covariances(tril), logdet)
        return None

    def best_elbo(self, reference: Reference) -> float | None:
        """Unknown in general: whether an encoder can reach the posterior depends on the model."""
        return None

    def valid_draws(self, params) -> None:
        """A density family stores no draws."""
        return None


def _covariances(tril: Array) -> Array:
    """L_p L_pᵀ for each point p."""
    return tril @ jnp.swapaxes(tril, -1, -2)


def _solve(tril: Array, r: Array) -> Array:
    """L_p⁻¹ r_p for each point p: ``tril`` (N, K, K), ``r`` (..., N, K)."""
    batch = r.shape[:-2]
    flat = r.reshape((-1,) + r.shape[-2:])  # (B, N, K)
    solved = solve_triangular(tril, jnp.moveaxis(flat, 0, -1), lower=True)  # (N, K, B)
    return jnp.moveaxis(solved, -1, 0).reshape(batch + r.shape[-2:])


def _log_density(eps: Array, log_diag: Array) -> Array:
    """log q at the draws of whitened noise ``eps`` (..., N, K): log N(eps; 0, I) − Σ log diag L."""
    return (
        -0.5 * jnp.sum(eps**2, axis=(-2, -1))
        - eps.shape[-1] * eps.shape[-2] * _HALF_LOG_2PI
        - jnp.sum(log_diag)
    )
