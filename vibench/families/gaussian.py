"""Gaussian approximating families shared by methods: mean-field, full-rank, low-rank.

A family is a small, frozen, hashable object: the static half of an
:class:`vibench.core.Approximation`, whose ``params`` pytree is the dynamic half.
``log_prob`` accepts ``z`` of shape ``(..., dim)``.

Gaussian families also give ``sample_rows(params, key, start, count)``: rows ``start``
to ``start + count`` of ``sample_and_log_prob(params, key, n)`` for any n ≥ start +
count, the same numbers, so memory-bounded metrics draw in chunks without changing a
draw; and ``blocks(params, size)``: q's mean and the diagonal (size × size) blocks of
its covariance, with log det of the whole (what an exact KL against a posterior of
independent blocks needs), never a dense covariance. ``gaussian(params)`` (the dense
``(mean, cov)``) is None above ``DENSE_MAX_DIM`` dimensions.

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
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax import lax
from jax.extend.random import threefry2x32_p

from vibench.core import Array, Reference

_HALF_LOG_2PI = 0.5 * jnp.log(2 * jnp.pi)

DENSE_MAX_DIM = 4096
"""Above this many dimensions ``gaussian(params)`` is None: a dense float32 covariance
would take 64 MiB at 4096 and grows as dim²."""

FULLRANK_MAX_DIM = 8192
"""The most dimensions a full-rank family accepts: its (dim × dim) scale factor is 256 MiB
in float32 at 8192, and an optimizer holds about four copies (params, gradient, Adam's
two moments). Local-latent tasks with many points (``ppca[n=50000]``: 100 000
dimensions) need ``meanfield`` or a block-diagonal family; ``init`` says so."""


class BlockMoments(NamedTuple):
    """A Gaussian q seen through blocks of ``size`` consecutive coordinates: ``mean``
    (N, size), ``cov`` the diagonal blocks of its covariance (N, size, size), ``logdet``
    the log det of its whole covariance."""

    mean: Array
    cov: Array
    logdet: Array


def standard_normal_rows(key, start: int, count: int, dim: int, dtype) -> Array:
    """Rows ``start`` to ``start + count`` of ``standard_normal(key, (n, dim), dtype)``,
    bit for bit, for any n ≥ start + count, without drawing the other rows.

    JAX's partitionable threefry (the default since JAX 0.5) makes element i of a flat
    draw from the counter i alone: the 32-bit words of threefry2x32(key, (hi(i), lo(i)))
    xor-ed, turned into a uniform on (−1, 1) by its top mantissa bits, then into a
    normal by √2 erf⁻¹ (``jax.random.normal``); here i runs over the rows' flat
    indices. ``start`` may be traced. A test pins the equality to ``jax.random.normal``.
    """
    if not jax.config.jax_threefry_partitionable:
        raise RuntimeError("standard_normal_rows needs jax_threefry_partitionable=True (JAX's default)")
    dtype = jax.dtypes.canonicalize_dtype(dtype)  # float64 params in a float32 run: float32
    if dtype not in (jnp.float32, jnp.float64):
        raise ValueError(f"standard_normal_rows draws float32 or float64, not {dtype}")
    first = jnp.asarray(start, jnp.uint32) * np.uint32(dim)  # flat index < 2³²: checked by the caller
    lo = first + jnp.arange(count * dim, dtype=jnp.uint32)
    hi = (lo < first).astype(jnp.uint32)
    k1, k2 = jax.random.key_data(key)
    bits1, bits2 = threefry2x32_p.bind(k1, k2, hi, lo)
    if dtype == jnp.float32:  # a float32 uses the xor of the words, a float64 both (x64 mode)
        bits, unsigned = bits1 ^ bits2, np.uint32
    else:
        bits, unsigned = (bits1.astype(jnp.uint64) << np.uint64(32)) | bits2.astype(jnp.uint64), np.uint64
    width, mantissa_bits = 8 * np.dtype(unsigned).itemsize, jnp.finfo(dtype).nmant
    mantissa = lax.shift_right_logical(bits, unsigned(width - mantissa_bits))
    floats = lax.bitcast_convert_type(mantissa | np.array(1.0, dtype).view(unsigned), dtype) - 1.0
    low = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    uniform = lax.max(low, floats * (np.array(1.0, dtype) - low) + low)
    return (np.array(np.sqrt(2), dtype) * lax.erf_inv(uniform)).reshape(count, dim)


def check_rows(start: int, count: int, dim: int) -> None:
    """Refuse a row range whose flat indices pass 2³² (``standard_normal_rows``'s counter)."""
    if (start + count) * dim >= 2**32:
        raise ValueError(f"rows up to {start + count} of {dim} dimensions pass 2^32 draws of noise")


def standard_normal(key, shape: tuple[int, ...], dtype) -> Array:
    """N(0, I) noise of ``shape``, drawn flat and reshaped: the same numbers as
    ``jax.random.normal(key, shape)`` (threefry counts flat indices), but on CPU under
    ``vmap`` (SBC's batched fits) about 3x faster for small shapes, e.g. (8, 6)
    per replicate (XLA's threefry over a multi-dimensional iota fuses poorly). ``dtype``
    follows the run's precision (float64 params in a float32 run draw float32)."""
    dtype = jax.dtypes.canonicalize_dtype(dtype)
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
        if params["loc"].shape[-1] > DENSE_MAX_DIM:
            return None
        return params["loc"], jnp.diag(jnp.exp(2 * params["log_scale"]))

    def blocks(self, params, size: int) -> BlockMoments | None:
        loc, log_scale = params["loc"], params["log_scale"]
        if loc.shape[-1] % size:
            return None
        var = jnp.exp(2 * log_scale).reshape(-1, size)
        return BlockMoments(loc.reshape(-1, size), var[..., None] * jnp.eye(size, dtype=var.dtype), 2 * jnp.sum(log_scale))

    def sample_rows(self, params, key, start, count):
        eps = standard_normal_rows(key, start, count, params["loc"].shape[-1], params["loc"].dtype)
        z = params["loc"] + jnp.exp(params["log_scale"]) * eps
        return z, self.log_prob(params, z)

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
        if d > FULLRANK_MAX_DIM:
            raise ValueError(
                f"a full-rank Gaussian on {d} dimensions needs a {d}x{d} scale factor; "
                f"at most {FULLRANK_MAX_DIM} dimensions: use family=meanfield (or lowrank)"
            )
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
        if params["loc"].shape[-1] > DENSE_MAX_DIM:
            return None
        chol = self.scale_tril(params)
        return params["loc"], chol @ chol.T

    def blocks(self, params, size: int) -> BlockMoments | None:
        loc = params["loc"]
        if loc.shape[-1] % size:
            return None
        rows = self.scale_tril(params).reshape(-1, size, loc.shape[-1])
        cov = jnp.einsum("nid,njd->nij", rows, rows)
        return BlockMoments(loc.reshape(-1, size), cov, 2 * jnp.sum(params["log_diag"]))

    def sample_rows(self, params, key, start, count):
        eps = standard_normal_rows(key, start, count, params["loc"].shape[-1], params["loc"].dtype)
        return params["loc"] + eps @ self.scale_tril(params).T, _std_normal_log_prob(eps) - jnp.sum(params["log_diag"])

    def best_elbo(self, reference: Reference) -> float | None:
        """log p(x) when the posterior is exactly Gaussian (then q can equal it)."""
        exact = reference.gaussian is not None or reference.blocks is not None
        return reference.log_evidence if exact else None

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
        if params["loc"].shape[-1] > DENSE_MAX_DIM:
            return None
        f = params["factor"]
        return params["loc"], f @ f.T + jnp.diag(jnp.exp(2 * params["log_diag"]))

    def blocks(self, params, size: int) -> BlockMoments | None:
        """Blocks of F Fᵀ + D; log det by the determinant lemma, log det D + log det(I + Fᵀ D⁻¹ F)."""
        loc, f, log_diag = params["loc"], params["factor"], params["log_diag"]
        if loc.shape[-1] % size:
            return None
        var = jnp.exp(2 * log_diag)
        rows = f.reshape(-1, size, self.rank)
        cov = jnp.einsum("nir,njr->nij", rows, rows) + var.reshape(-1, size)[..., None] * jnp.eye(size, dtype=var.dtype)
        capacitance = jnp.eye(self.rank, dtype=f.dtype) + (f.T / var) @ f
        logdet = 2 * jnp.sum(log_diag) + jnp.linalg.slogdet(capacitance)[1]
        return BlockMoments(loc.reshape(-1, size), cov, logdet)

    def sample_rows(self, params, key, start, count):
        loc = params["loc"]
        key_diag, key_factor = jax.random.split(key)
        eps = standard_normal_rows(key_diag, start, count, loc.shape[-1], loc.dtype)
        eta = standard_normal_rows(key_factor, start, count, self.rank, loc.dtype)
        z = loc + jnp.exp(params["log_diag"]) * eps + eta @ params["factor"].T
        return z, self.log_prob(params, z)

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


@dataclass(frozen=True)
class BlockDiagonal:
    """A product of N independent ``block``-dim Gaussians: block n is N(loc_n, L_n L_nᵀ),
    L_n lower-triangular with diagonal exp(log_diag_n).

    ``params``: ``loc`` (N, K), ``log_diag`` (N, K), ``lower`` (N, K, K) (its strict
    lower triangles), K = ``block``; flat coordinate n·K + k is block n's k-th (the
    order of a local latent site of shape (N, K)). O(N·K²) memory, whatever N: the
    family of ``exact`` on tasks with local latents (:class:`vibench.structure.conjugate.BlockGaussian`).
    """

    block: int
    name: str = "blockdiag"
    has_density: bool = True

    def init(self, loc: Array, scale: float) -> dict[str, Array]:
        loc = loc.reshape(-1, self.block)
        return {
            "loc": loc,
            "log_diag": jnp.full_like(loc, jnp.log(scale)),
            "lower": jnp.zeros(loc.shape + (self.block,), loc.dtype),
        }

    @staticmethod
    def scale_tril(params) -> Array:
        """The blocks' Cholesky factors (N, K, K)."""
        diag = jnp.exp(params["log_diag"])
        return jnp.tril(params["lower"], -1) + diag[..., None] * jnp.eye(diag.shape[-1], dtype=diag.dtype)

    def sample_rows(self, params, key, start, count):
        loc = params["loc"]
        eps = standard_normal_rows(key, start, count, loc.size, loc.dtype)
        blocks = jnp.einsum("nij,snj->sni", self.scale_tril(params), eps.reshape((count,) + loc.shape))
        return (loc + blocks).reshape(count, -1), _std_normal_log_prob(eps) - jnp.sum(params["log_diag"])

    def sample(self, params, key, n):
        return self.sample_rows(params, key, 0, n)[0]

    def sample_and_log_prob(self, params, key, n):
        return self.sample_rows(params, key, 0, n)

    def log_prob(self, params, z):
        loc = params["loc"]
        batch = z.shape[:-1]
        offsets = z.reshape((-1,) + loc.shape) - loc  # (B, N, K)
        solve = jax.vmap(lambda c, b: jax.scipy.linalg.solve_triangular(c, b, lower=True))
        white = solve(self.scale_tril(params), jnp.moveaxis(offsets, 0, -1))  # (N, K, B)
        log_q = -0.5 * jnp.sum(white**2, axis=(0, 1)) - jnp.sum(params["log_diag"]) - loc.size * _HALF_LOG_2PI
        return log_q.reshape(batch)

    def blocks(self, params, size: int) -> BlockMoments | None:
        logdet = 2 * jnp.sum(params["log_diag"])
        chol = self.scale_tril(params)
        if size == self.block:
            return BlockMoments(params["loc"], chol @ jnp.swapaxes(chol, -1, -2), logdet)
        if size == 1:
            var = jnp.sum(chol**2, axis=-1).reshape(-1, 1, 1)
            return BlockMoments(params["loc"].reshape(-1, 1), var, logdet)
        return None

    def gaussian(self, params):
        loc = params["loc"]
        if loc.size > DENSE_MAX_DIM:
            return None
        n, k = loc.shape
        cov = self.blocks(params, k).cov
        dense = jnp.eye(n, dtype=cov.dtype)[:, None, :, None] * cov[:, :, None, :]
        return loc.reshape(-1), dense.reshape(n * k, n * k)

    def best_elbo(self, reference: Reference) -> float | None:
        """log p(x) when the posterior is a product of Gaussian blocks of this size."""
        blocks = reference.blocks
        return reference.log_evidence if blocks is not None and blocks.block == self.block else None

    def valid_draws(self, params) -> None:
        """A density family stores no draws."""
        return None

    def entropy(self, params):
        return jnp.sum(params["log_diag"]) + params["loc"].size * (0.5 + _HALF_LOG_2PI)


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
