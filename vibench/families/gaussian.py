"""Gaussian approximating families shared by methods: mean-field, full-rank, low-rank.

A family is a small, frozen, hashable object: the static half of an
:class:`vibench.core.Approximation`, whose ``params`` pytree is the dynamic half.
``log_prob`` accepts ``z`` of shape ``(..., dim)``.

Gaussian families also give ``sample_and_log_prob``, which evaluates log q at q's
own draws from the standard-normal noise that made them, never by solving with the
scale matrix: a triangular solve with an ill-conditioned Cholesky factor (easily
reached by an optimizer in a few hundred dimensions) amplifies rounding error
exponentially and returns garbage, in float32 and float64 alike. ``stick=True``
holds the parameters fixed inside log q, so its gradient flows through the draws
only (sticking the landing, Roeder et al. 2017).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from vibench.core import Array, Reference

_HALF_LOG_2PI = 0.5 * jnp.log(2 * jnp.pi)


def standard_normal(key, shape: tuple[int, ...], dtype) -> Array:
    """N(0, I) noise of ``shape``, drawn flat and reshaped: the same numbers as
    ``jax.random.normal(key, shape)`` (threefry counts flat indices), but on CPU under
    ``vmap`` (SBC's batched fits) about 3x faster for small shapes, e.g. (8, 6)
    per replicate (XLA's threefry over a multi-dimensional iota fuses poorly)."""
    return jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def _std_normal_log_prob(eps: Array) -> Array:
    return -0.5 * jnp.sum(eps**2, axis=-1) - eps.shape[-1] * _HALF_LOG_2PI


@dataclass(frozen=True)
class MeanField:
    """N(loc, diag(exp(2 log_scale)))."""

    name: str = "meanfield"
    has_density: bool = True

    def init(self, loc: Array, scale: float) -> dict[str, Array]:
        return {"loc": loc, "log_scale": jnp.full_like(loc, jnp.log(scale))}

    def sample(self, params, key, n):
        eps = standard_normal(key, (n,) + params["loc"].shape, params["loc"].dtype)
        return params["loc"] + jnp.exp(params["log_scale"]) * eps

    def log_prob(self, params, z):
        return dist.Normal(params["loc"], jnp.exp(params["log_scale"])).to_event(1).log_prob(z)

    def gaussian(self, params):
        return params["loc"], jnp.diag(jnp.exp(2 * params["log_scale"]))

    def best_elbo(self, reference: Reference) -> float | None:
        """The mean-field optimum's ELBO, where the task knows it."""
        return reference.meanfield_elbo

    def valid_draws(self, params) -> None:
        """A density family stores no draws."""
        return None

    def entropy(self, params):
        return jnp.sum(params["log_scale"]) + params["loc"].shape[0] * (0.5 + _HALF_LOG_2PI)

    def sample_and_log_prob(self, params, key, n, stick=False):
        z = self.sample(params, key, n)
        return z, self.log_prob(jax.lax.stop_gradient(params) if stick else params, z)


@dataclass(frozen=True)
class FullRank:
    """N(loc, L Lᵀ), L lower-triangular with diagonal exp(log_diag)."""

    name: str = "fullrank"
    has_density: bool = True

    def init(self, loc: Array, scale: float) -> dict[str, Array]:
        d = loc.shape[0]
        return {
            "loc": loc,
            "log_diag": jnp.full_like(loc, jnp.log(scale)),
            "lower": jnp.zeros((d, d), loc.dtype),
        }

    @staticmethod
    def scale_tril(params) -> Array:
        return jnp.tril(params["lower"], -1) + jnp.diag(jnp.exp(params["log_diag"]))

    def sample(self, params, key, n):
        return self.sample_and_log_prob(params, key, n)[0]

    def log_prob(self, params, z):
        return dist.MultivariateNormal(params["loc"], scale_tril=self.scale_tril(params)).log_prob(z)

    def gaussian(self, params):
        chol = self.scale_tril(params)
        return params["loc"], chol @ chol.T

    def best_elbo(self, reference: Reference) -> float | None:
        """log p(x) when the posterior is exactly Gaussian (then q can equal it)."""
        return reference.log_evidence if reference.gaussian is not None else None

    def valid_draws(self, params) -> None:
        """A density family stores no draws."""
        return None

    def entropy(self, params):
        return jnp.sum(params["log_diag"]) + params["loc"].shape[0] * (0.5 + _HALF_LOG_2PI)

    def sample_and_log_prob(self, params, key, n, stick=False):
        eps = standard_normal(key, (n,) + params["loc"].shape, params["loc"].dtype)
        z = params["loc"] + eps @ self.scale_tril(params).T
        if not stick:
            return z, _std_normal_log_prob(eps) - jnp.sum(params["log_diag"])
        # ``white`` equals eps in value; its derivative in z is L⁻¹ with L held fixed.
        fixed = jax.lax.stop_gradient(params)
        offset = z - fixed["loc"]
        correction = jax.scipy.linalg.solve_triangular(
            self.scale_tril(fixed), (offset - jax.lax.stop_gradient(offset)).T, lower=True
        ).T
        white = jax.lax.stop_gradient(eps) + correction
        return z, _std_normal_log_prob(white) - jnp.sum(fixed["log_diag"])


@dataclass(frozen=True)
class LowRank:
    """N(loc, F Fᵀ + diag(exp(2 log_diag))) with F of shape (dim, rank)."""

    rank: int = 2
    name: str = "lowrank"
    has_density: bool = True

    def init(self, loc: Array, scale: float) -> dict[str, Array]:
        d = loc.shape[0]
        return {
            "loc": loc,
            "log_diag": jnp.full_like(loc, jnp.log(scale)),
            "factor": jnp.zeros((d, self.rank), loc.dtype),
        }

    def sample(self, params, key, n):
        loc = params["loc"]
        key_diag, key_factor = jax.random.split(key)
        eps = standard_normal(key_diag, (n,) + loc.shape, loc.dtype)
        eta = standard_normal(key_factor, (n, self.rank), loc.dtype)
        return loc + jnp.exp(params["log_diag"]) * eps + eta @ params["factor"].T

    def log_prob(self, params, z):
        q = dist.LowRankMultivariateNormal(
            params["loc"], params["factor"], jnp.exp(2 * params["log_diag"])
        )
        return q.log_prob(z)

    def gaussian(self, params):
        f = params["factor"]
        return params["loc"], f @ f.T + jnp.diag(jnp.exp(2 * params["log_diag"]))

    def best_elbo(self, reference: Reference) -> float | None:
        """Unknown in closed form for a rank-limited covariance."""
        return None

    def valid_draws(self, params) -> None:
        """A density family stores no draws."""
        return None

    def entropy(self, params):
        q = dist.LowRankMultivariateNormal(
            params["loc"], params["factor"], jnp.exp(2 * params["log_diag"])
        )
        return q.entropy()

    def sample_and_log_prob(self, params, key, n, stick=False):
        z = self.sample(params, key, n)
        return z, self.log_prob(jax.lax.stop_gradient(params) if stick else params, z)


GAUSSIAN_FAMILIES = ("meanfield", "fullrank", "lowrank")


def gaussian_family(name: str, rank: int = 2) -> MeanField | FullRank | LowRank:
    """The Gaussian family called ``name`` (one of :data:`GAUSSIAN_FAMILIES`)."""
    if name == "meanfield":
        return MeanField()
    if name == "fullrank":
        return FullRank()
    if name == "lowrank":
        return LowRank(rank=rank)
    raise ValueError(f"unknown Gaussian family {name!r}; valid: {', '.join(GAUSSIAN_FAMILIES)}")
