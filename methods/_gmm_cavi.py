"""The computation of :mod:`vibench.methods.gmm_cavi` (declared there, with its parameters).

Equation numbers are Bishop (2006). The parameter update uses the weighted scatter
about each component's weighted mean, as scikit-learn does, with the counts floored at
a tiny value so an empty component takes the prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import digamma, gammaln, logsumexp

from vibench.core import Approximation, Array, Data, LogDensity, Reference, Task
from vibench.methods.gmm_cavi import GMMCAVIConfig
from vibench.structure.mixture import ConjugateMixture, fold_log_prob, sort_components

TINY_COUNT = 1e-10


class Posterior(NamedTuple):
    """q(w) = Dirichlet(alpha); q(μ_k, Λ_k) = N(m_k, (β_k Λ_k)⁻¹) Wishart(Λ_k; W_k, ν_k),
    with ``w_inv`` = W_k⁻¹ (K, d, d)."""

    alpha: Array
    beta: Array
    m: Array
    w_inv: Array
    nu: Array


def _multigammaln(a: Array, d: int) -> Array:
    return d * (d - 1) / 4 * math.log(math.pi) + jnp.sum(gammaln(a[..., None] - jnp.arange(d) / 2), -1)


def _log_wishart_norm(w_inv: Array, nu: Array) -> Array:
    """ln B(W, ν) (B.79), from W⁻¹."""
    d = w_inv.shape[-1]
    return nu / 2 * jnp.linalg.slogdet(w_inv)[1] - nu * d / 2 * math.log(2) - _multigammaln(nu / 2, d)


def _log_dirichlet_norm(alpha: Array) -> Array:
    """ln C(α) (B.23)."""
    return gammaln(jnp.sum(alpha, -1)) - jnp.sum(gammaln(alpha), -1)


def update_parameters(mix: ConjugateMixture, x: Array, r: Array) -> Posterior:
    """q(w), q(μ, Λ) given responsibilities ``r`` (n, K) (10.58, 10.60–10.63)."""
    counts = r.sum(0)
    safe = jnp.maximum(counts, TINY_COUNT)
    xbar = (r.T @ x) / safe[:, None]
    resid = x[None] - xbar[:, None]  # (K, n, d)
    scatter = jnp.einsum("nk,kni,knj->kij", r, resid, resid)  # N_k S_k
    beta = mix.beta0 + counts
    m = (mix.beta0 * mix.m0 + counts[:, None] * xbar) / beta[:, None]
    dm = xbar - mix.m0
    w_inv = jnp.linalg.inv(mix.w0) + scatter + (mix.beta0 * counts / beta)[:, None, None] * dm[:, :, None] * dm[:, None, :]
    return Posterior(mix.alpha0 + counts, beta, m, w_inv, mix.nu0 + counts)


def _expectations(q: Posterior) -> tuple[Array, Array]:
    """E ln w_k (10.66) and E ln|Λ_k| (10.65)."""
    d = q.m.shape[-1]
    e_log_w = digamma(q.alpha) - digamma(q.alpha.sum())
    e_logdet = jnp.sum(digamma((q.nu[:, None] - jnp.arange(d)) / 2), -1) + d * math.log(2) - jnp.linalg.slogdet(q.w_inv)[1]
    return e_log_w, e_logdet


def _expected_log_lik(q: Posterior, x: Array, e_logdet: Array) -> Array:
    """E_q[ln N(x_n | μ_k, Λ_k⁻¹)] (n, K) (10.64)."""
    d = x.shape[-1]
    resid = x[:, None, :] - q.m[None]  # (n, K, d)
    w = jnp.linalg.inv(q.w_inv)  # K small inverses, not n·K solves
    maha = d / q.beta + q.nu * jnp.einsum("nki,kij,nkj->nk", resid, w, resid)
    return 0.5 * (e_logdet - d * math.log(2 * math.pi) - maha)


def update_responsibilities(q: Posterior, x: Array) -> Array:
    """r_nk ∝ exp(E ln w_k + E ln N(x_n | μ_k, Λ_k⁻¹)) (10.46, 10.49)."""
    e_log_w, e_logdet = _expectations(q)
    log_rho = e_log_w + _expected_log_lik(q, x, e_logdet)
    return jnp.exp(log_rho - logsumexp(log_rho, axis=1, keepdims=True))


def elbo(mix: ConjugateMixture, x: Array, r: Array, q: Posterior) -> Array:
    """The exact ELBO of q(z) q(w) q(μ, Λ) (10.70–10.77)."""
    k, d = q.m.shape
    e_log_w, e_logdet = _expectations(q)
    w0_inv = jnp.linalg.inv(mix.w0)
    log_lik = jnp.sum(r * _expected_log_lik(q, x, e_logdet))  # 10.71
    log_p_z = jnp.sum(r @ e_log_w)  # 10.72
    log_p_w = _log_dirichlet_norm(jnp.full(k, mix.alpha0)) + (mix.alpha0 - 1) * e_log_w.sum()  # 10.73
    dm = q.m - mix.m0
    w = jnp.linalg.inv(q.w_inv)
    quad = jnp.einsum("ki,kij,kj->k", dm, w, dm)
    log_p_mu_lambda = (  # 10.74
        0.5 * jnp.sum(d * math.log(mix.beta0 / (2 * math.pi)) + e_logdet - d * mix.beta0 / q.beta - mix.beta0 * q.nu * quad)
        + k * _log_wishart_norm(w0_inv, jnp.asarray(mix.nu0))
        + (mix.nu0 - d - 1) / 2 * e_logdet.sum()
        - 0.5 * jnp.sum(q.nu * jnp.einsum("ij,kji->k", w0_inv, w))
    )
    log_q_z = jnp.sum(jnp.where(r > 0, r * jnp.log(jnp.where(r > 0, r, 1.0)), 0.0))  # 10.75
    log_q_w = jnp.sum((q.alpha - 1) * e_log_w) + _log_dirichlet_norm(q.alpha)  # 10.76
    entropy_lambda = -_log_wishart_norm(q.w_inv, q.nu) - (q.nu - d - 1) / 2 * e_logdet + q.nu * d / 2  # B.82
    log_q_mu_lambda = jnp.sum(0.5 * e_logdet + d / 2 * jnp.log(q.beta / (2 * math.pi)) - d / 2 - entropy_lambda)  # 10.77
    return log_lik + log_p_z + log_p_w + log_p_mu_lambda - log_q_z - log_q_w - log_q_mu_lambda


class State(NamedTuple):
    step: Array
    r: Array
    q: Posterior
    gain: Array
    trace: Array


def run_cavi(mix: ConjugateMixture, x: Array, r0: Array, max_iters: int, tol: float) -> State:
    """CAVI from responsibilities ``r0``: q(θ) from r0, then each iteration updates r and
    q(θ) and records the ELBO, until a gain below ``tol`` · n nats or ``max_iters``."""
    n = x.shape[0]

    def not_done(s: State) -> Array:
        return (s.step < max_iters) & (s.gain >= tol * n)

    def body(s: State) -> State:
        r = update_responsibilities(s.q, x)
        q = update_parameters(mix, x, r)
        value = elbo(mix, x, r, q)
        previous = jnp.where(s.step > 0, s.trace[jnp.maximum(s.step - 1, 0)], -jnp.inf)
        return State(s.step + 1, r, q, value - previous, s.trace.at[s.step].set(value))

    start = State(jnp.asarray(0), r0, update_parameters(mix, x, r0), jnp.asarray(jnp.inf, x.dtype),
                  jnp.full((max_iters,), jnp.nan, x.dtype))
    return jax.lax.while_loop(not_done, body, start)


def random_responsibilities(key: jax.Array, n: int, k: int, dtype=jnp.float32) -> Array:
    """Uniform numbers normalized per point (scikit-learn's ``init_params="random"``)."""
    u = jax.random.uniform(key, (n, k), dtype)
    return u / u.sum(1, keepdims=True)


@dataclass(frozen=True, eq=False)
class FoldedNormalWishart:
    """Dirichlet(α) × Π_k Normal–Wishart(m_k, β_k, W_k, ν_k), sorted onto the mixture's
    ordered components and mapped to its flat unconstrained space (``params``: the
    fields of :class:`Posterior`)."""

    mixture: ConjugateMixture
    name: str = "dirichlet-normal-wishart"
    has_density: bool = True

    def _labelled_log_prob(self, params: dict, w: Array, mu: Array, prec_chol: Array) -> Array:
        d = mu.shape[-1]
        log_q = dist.Dirichlet(params["alpha"]).log_prob(w)
        log_q += jnp.sum(dist.WishartCholesky(params["nu"], rate_matrix=params["w_inv"]).log_prob(prec_chol))
        # μ_k ~ N(m_k, (β_k L Lᵀ)⁻¹): log density via the Cholesky factor of the precision
        whitened = jnp.sqrt(params["beta"])[:, None] * jnp.einsum("kji,kj->ki", prec_chol, mu - params["m"])
        log_det = d / 2 * jnp.log(params["beta"]) + jnp.sum(jnp.log(jnp.diagonal(prec_chol, axis1=-2, axis2=-1)), -1)
        return log_q + jnp.sum(log_det - d / 2 * math.log(2 * math.pi) - 0.5 * jnp.sum(whitened**2, -1))

    def _one(self, params: dict, key: Array) -> Array:
        key_w, key_l, key_mu = jax.random.split(key, 3)
        w = dist.Dirichlet(params["alpha"]).sample(key_w)
        prec_chol = dist.WishartCholesky(params["nu"], rate_matrix=params["w_inv"]).sample(key_l)
        eps = jax.random.normal(key_mu, params["m"].shape) / jnp.sqrt(params["beta"])[:, None]
        upper = jnp.swapaxes(prec_chol, -1, -2)
        mu = params["m"] + jax.scipy.linalg.solve_triangular(upper, eps[..., None], lower=False)[..., 0]
        return self.mixture.flatten(*sort_components(w, mu, prec_chol))

    def sample(self, params: dict, key: Array, n: int) -> Array:
        return jax.vmap(lambda k: self._one(params, k))(jax.random.split(key, n))

    def log_prob(self, params: dict, z: Array) -> Array:
        w, mu, prec_chol, log_jacobian = self.mixture.unflatten(z)
        return fold_log_prob(lambda *theta: self._labelled_log_prob(params, *theta), w, mu, prec_chol) + log_jacobian

    def sample_and_log_prob(self, params: dict, key: Array, n: int) -> tuple[Array, Array]:
        z = self.sample(params, key, n)
        return z, jax.vmap(lambda point: self.log_prob(params, point))(z)

    def gaussian(self, params: dict) -> None:
        return None

    def best_elbo(self, reference: Reference) -> None:
        return None

    def valid_draws(self, params: dict) -> None:
        return None


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: GMMCAVIConfig) -> Approximation:
    mix = task.extension(ConjugateMixture)
    x = data[mix.observed]
    state = run_cavi(mix, x, random_responsibilities(key, x.shape[0], mix.k, x.dtype), config.max_iters, config.tol)
    return Approximation(
        params=state.q._asdict(),
        trace=state.trace,
        grad_evals=jnp.asarray(0),
        family=FoldedNormalWishart(mix),
        steps=state.step,
        converged=state.gain < config.tol * x.shape[0],
    )


def supports(task: Task) -> tuple[bool, str]:
    if task.extension(ConjugateMixture) is None:
        return False, "needs a conjugate Gaussian mixture (a ConjugateMixture task extension)"
    return True, ""
