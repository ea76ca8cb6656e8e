"""Products of independent Dirichlets over simplex-valued latent sites, in the flat
unconstrained space of :class:`vibench.core.LogDensity`.

``params`` maps each simplex site to its concentrations, shape ``(rows, n)``: one
Dirichlet per row (LDA's topic proportions θ_d and topics β_k). The flat layout is
:func:`jax.flatten_util.ravel_pytree`'s of the harness: sites in sorted order, each the
row-major ``(rows, n − 1)`` stick-breaking coordinates of ``biject_to(simplex)``
(NumPyro's :class:`~numpyro.distributions.transforms.StickBreakingTransform`).

Draws are made in log space (log-Gamma variates, normalized by a log-sum-exp) and
mapped to stick-breaking coordinates from their logarithms,
u_i = log x_i − log Σ_{j>i} x_j + log(n − 1 − i), so components far below the smallest
float (a Gamma(0.1) variate is below float32's 1.2e-38 with probability ≈ 2e-4) stay
finite. Log components are floored at ``log(tiny) + 7`` (≈ −80 in float32) so the
model's own forward map stays above underflow; a draw is moved by the floor only in
that tail, and its log q is the density at the floored point.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from vibench.core import Array, Reference

FLOOR_MARGIN = 7.0
"""Log components are floored at ``log(finfo.tiny) + FLOOR_MARGIN`` (a factor e⁷ ≈ 1100
above underflow, room for the products of the forward stick-breaking map)."""


def log_dirichlet(log_gamma: Array) -> Array:
    """log x of the Dirichlet draws whose Gamma variates have logarithms ``log_gamma``
    (..., K): normalized by a log-sum-exp and floored (see the module doc)."""
    log_x = log_gamma - jax.nn.logsumexp(log_gamma, axis=-1, keepdims=True)
    floor = jnp.log(jnp.finfo(log_x.dtype).tiny) + FLOOR_MARGIN
    log_x = jnp.maximum(log_x, floor)
    return log_x - jax.nn.logsumexp(log_x, axis=-1, keepdims=True)


def stick_breaking_inverse(log_x: Array) -> tuple[Array, Array]:
    """Stick-breaking coordinates ``(..., K − 1)`` of simplex points given by ``log x``
    ``(..., K)``, and log |det| of the forward map's Jacobian at them (NumPyro's
    ``StickBreakingTransform``: log|J| = Σ_i log x_i + log σ(−(u_i − log(K − 1 − i))))."""
    k = log_x.shape[-1]
    # log Σ_{j>i} x_j for i = 0 … K−2: reverse cumulative log-sum-exp
    tail = jax.lax.cumlogsumexp(log_x, axis=log_x.ndim - 1, reverse=True)[..., 1:]
    ratio = log_x[..., :-1] - tail
    u = ratio + jnp.log(k - 1 - jnp.arange(k - 1, dtype=log_x.dtype))
    log_det = jnp.sum(log_x[..., :-1] + jax.nn.log_sigmoid(-ratio), axis=-1)
    return u, log_det


def log_simplex(u: Array) -> Array:
    """log x of the simplex point with stick-breaking coordinates ``u`` (..., K − 1), stably."""
    k1 = u.shape[-1]
    ratio = u - jnp.log(k1 - jnp.arange(k1, dtype=u.dtype))
    log_z, log_1mz = jax.nn.log_sigmoid(ratio), jax.nn.log_sigmoid(-ratio)
    before = jnp.cumsum(log_1mz, axis=-1)
    shifted = jnp.concatenate([jnp.zeros_like(before[..., :1]), before], axis=-1)
    return shifted + jnp.concatenate([log_z, jnp.zeros_like(log_z[..., :1])], axis=-1)


def dirichlet_log_pdf(log_x: Array, concentration: Array) -> Array:
    """Σ over rows of log Dirichlet(x; concentration), from ``log x`` (..., rows, K)."""
    norm = gammaln(jnp.sum(concentration, -1)) - jnp.sum(gammaln(concentration), -1)
    return jnp.sum(norm + jnp.sum((concentration - 1) * log_x, -1), -1)


@dataclass(frozen=True)
class DirichletProduct:
    """Independent Dirichlets, one per row of each simplex site (see the module doc)."""

    name: str = "dirichlet"
    has_density: bool = True

    @staticmethod
    def _sites(params) -> list[str]:
        return sorted(params)

    def sample_rows(self, params, key, start, count):
        """Draws ``start`` … ``start + count − 1`` of the family's sample and their log q:
        draw i uses the key ``fold_in(key, i)``, whatever the chunk."""

        sites = self._sites(params)
        flat = jnp.concatenate([params[site].reshape(-1) for site in sites])

        def one(i):
            # one log-Gamma call for every site: its sampler is a large program to compile
            log_gamma = jax.random.loggamma(jax.random.fold_in(key, i), flat)
            parts, log_q, offset = [], 0.0, 0
            for site in sites:
                conc = params[site]
                log_x = log_dirichlet(log_gamma[offset : offset + conc.size].reshape(conc.shape))
                offset += conc.size
                u, log_det = stick_breaking_inverse(log_x)
                parts.append(u.reshape(-1))
                log_q = log_q + dirichlet_log_pdf(log_x, conc) + jnp.sum(log_det)
            return jnp.concatenate(parts), log_q

        return jax.vmap(one)(start + jnp.arange(count))

    def sample_and_log_prob(self, params, key, n):
        return self.sample_rows(params, key, 0, n)

    def sample(self, params, key, n):
        return self.sample_and_log_prob(params, key, n)[0]

    def log_prob(self, params, z):
        """log q(z) at a flat unconstrained point ``z`` (dim,)."""
        total, offset = 0.0, 0
        for site in self._sites(params):
            conc = params[site]
            rows, k = conc.shape
            u = z[offset : offset + rows * (k - 1)].reshape(rows, k - 1)
            offset += rows * (k - 1)
            log_x = log_simplex(u)
            _, log_det = stick_breaking_inverse(log_x)
            total = total + dirichlet_log_pdf(log_x, conc) + jnp.sum(log_det)
        return total

    def means(self, params) -> dict[str, Array]:
        """E_q[x] per site: each row's concentrations normalized."""
        return {site: conc / jnp.sum(conc, -1, keepdims=True) for site, conc in params.items()}

    def gaussian(self, params):
        return None

    def best_elbo(self, reference: Reference) -> float | None:
        return None

    def valid_draws(self, params) -> None:
        """A density family stores no draws."""
        return None
