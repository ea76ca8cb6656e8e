"""The computation of :mod:`vibench.tasks.gmm` (declared there, with its parameters).

Exact references enumerate the K^n assignments in chunks of :data:`CHUNK` in NumPy
float64: given an assignment z with counts N_j, sums and scatter matrices, the model
is conjugate, and

    log p(x, z) = log Γ(Kα₀) − log Γ(n + Kα₀) + Σ_j [log Γ(N_j + α₀) − log Γ(α₀)]
                  + Σ_j log p(x_{z=j})                        (Normal–Wishart marginal)

    log p(X_j) = −N_j d/2 log π + log Γ_d(ν_j/2) − log Γ_d(ν₀/2)
                 + ν₀/2 log|W₀⁻¹| − ν_j/2 log|W_j⁻¹| + d/2 log(β₀/β_j)

(Murphy 2007, "Conjugate Bayesian analysis of the Gaussian distribution", §8), with
β_j = β₀ + N_j, ν_j = ν₀ + N_j, m_j = (β₀m₀ + Σx)/β_j and
W_j⁻¹ = W₀⁻¹ + Σ x xᵀ + β₀ m₀m₀ᵀ − β_j m_j m_jᵀ. The predictive of a new point given z
is Σ_j E[w_j | z] St(x*; m_j, (ν_j + 1 − d)β_j/(1 + β_j) W_j, ν_j + 1 − d) (Bishop
10.81). The assignment's sums make these exact for the unordered model, whose evidence
and predictive the ordered model shares.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.flatten_util import ravel_pytree
from numpyro.distributions.transforms import biject_to
from scipy.special import gammaln, logsumexp

from vibench.core import Data, Reference, Task
from vibench.structure.mixture import ConjugateMixture, ordered_rows, sort_components
from vibench.structure.predictive import Predictive
from vibench.tasks.gmm import IRIS_ROWS, VERSION, GMMParams

EXACT_LIMIT = 3**12
"""The most assignments K^n the exact reference enumerates (n = 12 points, K = 3)."""
CHUNK = 2**14
REFERENCE_DRAWS = 20_000
TEST_STREAM, REFERENCE_STREAM = 1, 2


# --------------------------------------------------------------------- the model
class OrderedIID(dist.Distribution):
    """K i.i.d. draws of a d-dimensional ``base``, sorted by their first coordinate:
    density K! Π_k base(x_k) on :data:`ordered_rows`."""

    support = ordered_rows
    arg_constraints = {}
    pytree_data_fields = ("base",)
    pytree_aux_fields = ("k",)

    def __init__(self, base: dist.Distribution, k: int) -> None:
        self.base, self.k = base, k
        super().__init__(batch_shape=(), event_shape=(k, *base.event_shape))

    def sample(self, key, sample_shape=()):
        x = self.base.expand((*sample_shape, self.k)).sample(key)
        order = jnp.argsort(x[..., 0], axis=-1)
        return jnp.take_along_axis(x, order[..., None], axis=-2)

    def log_prob(self, value):
        return math.lgamma(self.k + 1) + self.base.log_prob(value).sum(-1)


def _mean_marginal(mix: ConjugateMixture) -> dist.MultivariateStudentT:
    """μ_k's Normal–Wishart marginal: St(m₀, W₀⁻¹ / (β₀ (ν₀ − d + 1)), ν₀ − d + 1)."""
    d = mix.m0.shape[0]
    df = mix.nu0 - d + 1
    cov = jnp.linalg.inv(mix.w0) / (mix.beta0 * df)
    return dist.MultivariateStudentT(df, mix.m0, jnp.linalg.cholesky(cov))


def _precision_given_mean(mix: ConjugateMixture, mu: jax.Array) -> dist.WishartCholesky:
    """Λ_k | μ_k ~ Wishart with rate W₀⁻¹ + β₀ (μ_k − m₀)(μ_k − m₀)ᵀ and ν₀ + 1 degrees,
    as the Cholesky factor of Λ_k (batch over k)."""
    delta = mu - mix.m0
    rate = jnp.linalg.inv(mix.w0) + mix.beta0 * delta[..., :, None] * delta[..., None, :]
    return dist.WishartCholesky(mix.nu0 + 1.0, rate_matrix=rate)


def likelihood(w: jax.Array, mu: jax.Array, prec_chol: jax.Array) -> dist.Distribution:
    """Σ_k w_k N(μ_k, Λ_k⁻¹), Λ_k = L_k L_kᵀ: the model of one point, assignment summed out."""
    precision = prec_chol @ jnp.swapaxes(prec_chol, -1, -2)
    components = dist.MultivariateNormal(mu, precision_matrix=precision)
    return dist.MixtureSameFamily(dist.Categorical(probs=w), components)


def make_model(mix: ConjugateMixture):
    def model(data: Data) -> None:
        w = numpyro.sample("w", dist.Dirichlet(jnp.full(mix.k, mix.alpha0)))
        mu = numpyro.sample("mu", OrderedIID(_mean_marginal(mix), mix.k))
        prec_chol = numpyro.sample("prec_chol", _precision_given_mean(mix, mu).to_event(1))
        numpyro.sample("x", likelihood(w, mu, prec_chol).expand([data["x"].shape[0]]).to_event(1), obs=data["x"])

    return model


SUPPORTS = {"mu": ordered_rows, "prec_chol": dist.constraints.lower_cholesky, "w": dist.constraints.simplex}


def flat_maps(k: int, d: int):
    """``(flatten, unflatten)`` between the sites (w, mu, prec_chol) and the flat
    unconstrained vector, in the order :func:`vibench.logdensity.derive_logdensity` uses
    (``ravel_pytree`` of the unconstrained sites)."""
    feasible = {"mu": ordered_rows.feasible_like(jnp.zeros((k, d))), "prec_chol": jnp.broadcast_to(jnp.eye(d), (k, d, d)),
                "w": jnp.full(k, 1.0 / k)}
    _, unravel = ravel_pytree({name: biject_to(SUPPORTS[name]).inv(v) for name, v in feasible.items()})

    def flatten(w, mu, prec_chol):
        sites = {"mu": mu, "prec_chol": prec_chol, "w": w}
        return ravel_pytree({name: biject_to(SUPPORTS[name]).inv(v) for name, v in sites.items()})[0]

    def unflatten(z):
        free = unravel(z)
        sites, log_jac = {}, 0.0
        for name, u in free.items():
            transform = biject_to(SUPPORTS[name])
            sites[name] = transform(u)
            log_jac = log_jac + jnp.sum(transform.log_abs_det_jacobian(u, sites[name]))
        return sites["w"], sites["mu"], sites["prec_chol"], log_jac

    return flatten, unflatten


def simulate_from(mix: ConjugateMixture, key: jax.Array, n: int) -> tuple[dict[str, jax.Array], Data]:
    """Parameters from the (ordered) prior and n points from them."""
    key_w, key_mu, key_l, key_z, key_x = jax.random.split(key, 5)
    w = dist.Dirichlet(jnp.full(mix.k, mix.alpha0)).sample(key_w)
    mu = OrderedIID(_mean_marginal(mix), mix.k).sample(key_mu)
    prec_chol = _precision_given_mean(mix, mu).sample(key_l)
    return {"w": w, "mu": mu, "prec_chol": prec_chol}, {"x": draw_points(key_z, key_x, w, mu, prec_chol, n)}


def draw_points(key_z, key_x, w, mu, prec_chol, n: int) -> jax.Array:
    """n points of the mixture: x = μ_z + L_z⁻ᵀ ε."""
    z = jax.random.categorical(key_z, jnp.log(w), shape=(n,))
    eps = jax.random.normal(key_x, (n, mu.shape[1]))
    upper = jnp.swapaxes(prec_chol[z], -1, -2)
    return mu[z] + jax.scipy.linalg.solve_triangular(upper, eps[..., None], lower=False)[..., 0]


# --------------------------------------------------------------------- the data
def true_means(k: int, d: int, separation: float) -> np.ndarray:
    """K means with neighbours ``separation`` apart: on a line (d = 1 or K = 2), else on a
    circle in the first two coordinates."""
    means = np.zeros((k, d))
    if d == 1 or k <= 2:
        means[:, 0] = separation * (np.arange(k) - (k - 1) / 2)
    else:
        radius = separation / (2 * np.sin(np.pi / k))
        angle = 2 * np.pi * np.arange(k) / k
        means[:, 0], means[:, 1] = radius * np.cos(angle), radius * np.sin(angle)
    return means


@partial(jax.jit, static_argnums=4)
def _points(key, w, mu, prec_chol, n: int) -> jax.Array:
    return draw_points(*jax.random.split(key), w, mu, prec_chol, n)


def simulated_data(p: GMMParams) -> tuple[Data, Data]:
    """Training and test points of K equal-weight, unit-covariance components."""
    mu = jnp.asarray(true_means(p.k, p.d, p.separation), jnp.float32)
    w, prec_chol = jnp.full(p.k, 1.0 / p.k), jnp.broadcast_to(jnp.eye(p.d), (p.k, p.d, p.d))
    key = jax.random.key(p.data_seed)
    return (
        {"x": _points(key, w, mu, prec_chol, p.n)},
        {"x": _points(jax.random.fold_in(key, TEST_STREAM), w, mu, prec_chol, p.n_test)},
    )


def iris_data(p: GMMParams) -> tuple[Data, Data]:
    """Standardized iris features: the first d, rows split by a seeded permutation."""
    try:
        from sklearn.datasets import load_iris
    except ImportError:
        raise ImportError("task gmm[data=iris] needs scikit-learn, which ships the iris data: pip install scikit-learn") from None
    x = load_iris().data[:, : p.d]
    x = (x - x.mean(0)) / x.std(0)
    rows = np.random.default_rng(p.data_seed).permutation(IRIS_ROWS)
    return (
        {"x": jnp.asarray(x[rows[: p.n]], jnp.float32)},
        {"x": jnp.asarray(x[rows[p.n : p.n + p.n_test]], jnp.float32)},
    )


# --------------------------------------------------------------------- exact enumeration
def _gammaln(xp):
    return jax.scipy.special.gammaln if xp is jnp else gammaln


def _multigammaln(a, d: int, xp=np):
    j = xp.arange(d)
    return d * (d - 1) / 4 * math.log(math.pi) + _gammaln(xp)(a[..., None] - j / 2).sum(-1)


def _assignments(n: int, k: int, start: int, stop: int) -> np.ndarray:
    """One-hot assignments number ``start`` … ``stop − 1`` (base-K digits), (c, n, k)."""
    index = np.arange(start, stop, dtype=np.int64)
    digits = (index[:, None] // k ** np.arange(n, dtype=np.int64)) % k
    return np.eye(k)[digits]


def _conjugate_posterior(mix: ConjugateMixture, onehot, x, xp=np):
    """Per assignment and component: counts, β, m, W⁻¹, ν (in x's dtype: float64 in
    NumPy for the references, the run's precision in JAX for :func:`assignment_log_joints`)."""
    m0, beta0 = xp.asarray(mix.m0, x.dtype), mix.beta0
    counts = onehot.sum(1)
    sums = xp.einsum("cnk,nd->ckd", onehot, x)
    squares = xp.einsum("cnk,nd,ne->ckde", onehot, x, x)
    beta = beta0 + counts
    m = (beta0 * m0 + sums) / beta[..., None]
    w_inv = (xp.linalg.inv(xp.asarray(mix.w0, x.dtype)) + squares + beta0 * xp.outer(m0, m0)
             - beta[..., None, None] * m[..., :, None] * m[..., None, :])
    return counts, beta, m, w_inv, mix.nu0 + counts


def _log_joint(mix: ConjugateMixture, counts, beta, w_inv, nu, n: int, xp=np):
    """log p(x, z) per assignment (see the module docstring)."""
    k, d, a0, lgamma = mix.k, mix.m0.shape[0], mix.alpha0, _gammaln(xp)
    log_prior = lgamma(k * a0) - lgamma(n + k * a0) + (lgamma(counts + a0) - lgamma(a0)).sum(-1)
    logdet0 = -xp.linalg.slogdet(xp.asarray(mix.w0, w_inv.dtype))[1]
    marginal = (-counts * d / 2 * math.log(math.pi) + _multigammaln(nu / 2, d, xp)
                - _multigammaln(xp.asarray(mix.nu0 / 2), d, xp) + mix.nu0 / 2 * logdet0
                - nu / 2 * xp.linalg.slogdet(w_inv)[1] + d / 2 * xp.log(mix.beta0 / beta))
    return log_prior + marginal.sum(-1)


def assignment_log_joints(mix: ConjugateMixture, x: jax.Array) -> jax.Array:
    """log p(x, z) of every one of the K^n assignments z, (K^n,), in JAX (jittable;
    memory O(K^n n K)): the enumeration of :func:`enumerate_exact` for any data set."""
    n, k = x.shape[0], mix.k
    if k**n > EXACT_LIMIT:
        raise ValueError(f"exact enumeration needs k^n <= {EXACT_LIMIT} assignments; got {k}^{n}")
    digits = (jnp.arange(k**n, dtype=jnp.int32)[:, None] // k ** jnp.arange(n, dtype=jnp.int32)) % k
    onehot = jax.nn.one_hot(digits, k, dtype=x.dtype)
    counts, beta, _, w_inv, nu = _conjugate_posterior(mix, onehot, x, jnp)
    return _log_joint(mix, counts, beta, w_inv, nu, n, jnp)


def _log_predictive_given(mix: ConjugateMixture, counts, beta, m, w_inv, nu, n: int, x_new: np.ndarray) -> np.ndarray:
    """log p(x*_i | x, z) per assignment and new point, (c, n_test) (Bishop 10.81)."""
    d = m.shape[-1]
    df = nu + 1 - d
    weight = np.log((mix.alpha0 + counts) / (mix.k * mix.alpha0 + n))
    # precision of the Student-t: df β/(1+β) W, W = (W⁻¹)⁻¹
    factor = df * beta / (1 + beta)
    resid = x_new[None, None] - m[:, :, None, :]  # (c, k, t, d)
    solved = np.linalg.solve(w_inv[:, :, None], resid[..., None])[..., 0]
    maha = factor[..., None] * np.einsum("cktd,cktd->ckt", resid, solved)
    logdet = d * np.log(factor) - np.linalg.slogdet(w_inv)[1]
    log_t = (gammaln((df + d) / 2) - gammaln(df / 2) - d / 2 * np.log(df * np.pi) + logdet / 2)[..., None] \
        - ((df + d) / 2)[..., None] * np.log1p(maha / df[..., None])
    return logsumexp(weight[..., None] + log_t, axis=1)


def enumerate_exact(mix: ConjugateMixture, x: np.ndarray, x_new: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Exact ``(log p(x), log p(x*_i | x) (n_test,), log p(x, z) over every assignment)``."""
    x, x_new = np.asarray(x, np.float64), np.asarray(x_new, np.float64)
    n, k = x.shape[0], mix.k
    total = k**n
    if total > EXACT_LIMIT:
        raise ValueError(f"exact enumeration needs k^n <= {EXACT_LIMIT} assignments; got {k}^{n}")
    log_joints, log_pred = [], []
    for start in range(0, total, CHUNK):
        onehot = _assignments(n, k, start, min(start + CHUNK, total))
        counts, beta, m, w_inv, nu = _conjugate_posterior(mix, onehot, x)
        lj = _log_joint(mix, counts, beta, w_inv, nu, n)
        log_joints.append(lj)
        log_pred.append(logsumexp(lj[:, None] + _log_predictive_given(mix, counts, beta, m, w_inv, nu, n, x_new), axis=0))
    log_joints = np.concatenate(log_joints)
    log_evidence = float(logsumexp(log_joints))
    return log_evidence, logsumexp(np.stack(log_pred), axis=0) - log_evidence, log_joints


def exact_draws(mix: ConjugateMixture, x: jax.Array, cdf: jax.Array, key: jax.Array, count: int) -> jax.Array:
    """``count`` exact posterior draws (count, dim), flat and ordered: an assignment by
    inverting ``cdf`` (the cumulative posterior probabilities of the K^n assignments, in
    the order of :func:`assignment_log_joints`), then the conjugate posterior given it."""
    n, k = x.shape[0], mix.k
    powers = jnp.asarray(k ** np.arange(n), jnp.int32)
    w_inv0 = jnp.linalg.inv(mix.w0)

    def one(key, u):
        key_w, key_l, key_mu = jax.random.split(key, 3)
        z = (jnp.minimum(jnp.searchsorted(cdf, u), cdf.shape[0] - 1) // powers) % k
        onehot = jax.nn.one_hot(z, k, dtype=x.dtype)
        counts = onehot.sum(0)
        beta = mix.beta0 + counts
        m = (mix.beta0 * mix.m0 + onehot.T @ x) / beta[:, None]
        w_inv = w_inv0 + jnp.einsum("nk,nd,ne->kde", onehot, x, x) + mix.beta0 * jnp.outer(mix.m0, mix.m0) \
            - beta[:, None, None] * m[:, :, None] * m[:, None, :]
        w = dist.Dirichlet(mix.alpha0 + counts).sample(key_w)
        prec_chol = dist.WishartCholesky(mix.nu0 + counts, rate_matrix=w_inv).sample(key_l)
        eps = jax.random.normal(key_mu, m.shape) / jnp.sqrt(beta)[:, None]
        mu = m + jax.scipy.linalg.solve_triangular(jnp.swapaxes(prec_chol, -1, -2), eps[..., None], lower=False)[..., 0]
        return mix.flatten(*sort_components(w, mu, prec_chol))

    key_z, key_rest = jax.random.split(key)
    return jax.vmap(one)(jax.random.split(key_rest, count), jax.random.uniform(key_z, (count,), x.dtype))


def exact_sampler(mix: ConjugateMixture, x: jax.Array, log_joints: np.ndarray):
    """``sample(key, S) -> (S, dim)``: exact posterior draws, flat and ordered (the
    assignments' probabilities from float64 ``log_joints``)."""
    probs = np.exp(log_joints - log_joints.max())
    cdf = jnp.asarray(np.cumsum(probs) / probs.sum(), jnp.float32)
    return jax.jit(partial(exact_draws, mix, x, cdf), static_argnums=1)


def exact_reference(mix: ConjugateMixture, data: Data, held_out: Data, seed: int) -> tuple[Reference, np.ndarray]:
    log_evidence, log_pred, log_joints = enumerate_exact(mix, data["x"], held_out["x"])
    sample = exact_sampler(mix, data["x"], log_joints)
    draws = np.asarray(sample(jax.random.fold_in(jax.random.key(seed), REFERENCE_STREAM), REFERENCE_DRAWS), np.float64)
    mean, std = draws.mean(0), draws.std(0, ddof=1)
    kurtosis = ((draws - mean) ** 4).mean(0) / std**4
    reference = Reference(
        provenance=(
            f"exact: log p(x) and the posterior predictive by enumerating all {mix.k}^{data['x'].shape[0]} assignments "
            "(Dirichlet-multinomial x Normal-Wishart marginal likelihoods, float64); moments from "
            f"{REFERENCE_DRAWS} exact posterior draws (assignment by its posterior probability, then the conjugate "
            "posterior, components ordered by the first coordinate of their means)"
        ),
        log_evidence=log_evidence,
        mean=jnp.asarray(mean),
        std=jnp.asarray(std),
        mean_se=jnp.asarray(std / np.sqrt(REFERENCE_DRAWS)),
        # se of a sample sd: sd · sqrt((kurtosis − 1) / (4 S))
        std_se=jnp.asarray(std * np.sqrt((kurtosis - 1) / (4 * REFERENCE_DRAWS))),
        sample=sample,
    )
    return reference, log_pred


# --------------------------------------------------------------------- the task
def mixture_prior(p: GMMParams, flatten, unflatten) -> ConjugateMixture:
    nu0 = p.d + p.dof_extra
    return ConjugateMixture(
        k=p.k, alpha0=p.alpha0, m0=jnp.zeros(p.d), beta0=p.beta0, w0=jnp.eye(p.d) / (nu0 * p.scale**2), nu0=nu0,
        flatten=flatten, unflatten=unflatten,
    )


def build(p: GMMParams) -> Task:
    mix = mixture_prior(p, *flat_maps(p.k, p.d))
    data, held_out = simulated_data(p) if p.data == "simulated" else iris_data(p)
    model = make_model(mix)

    def log_lik(z: jax.Array, test: Data) -> jax.Array:
        w, mu, prec_chol, _ = mix.unflatten(z)
        return likelihood(w, mu, prec_chol).log_prob(test["x"])

    exact_lpd = None
    if p.k**p.n <= EXACT_LIMIT:
        reference, log_pred = exact_reference(mix, data, held_out, p.data_seed)

        def exact_lpd(test: Data) -> jax.Array:
            """log p(x*_i | x), enumerated (computed once for the task's own test points)."""
            if test is held_out:
                return jnp.asarray(log_pred)
            return jnp.asarray(enumerate_exact(mix, data["x"], test["x"])[1])

        tags = {"exact-evidence", "conjugate", "multimodal", "mixture"}  # moments: exact draws, with MC error
    else:
        reference = Reference(
            provenance="none: no closed form beyond k^n = 3^12 assignments; make a stored NUTS reference with "
            "`vibench reference --task SPEC` and load it with vibench.reference.artifact.load_reference"
        )
        tags = {"conjugate", "multimodal", "mixture"}
    return Task(
        name="gmm",
        label="gmm",
        version=VERSION,
        tags=frozenset(tags),
        model=model,
        data=data,
        reference=reference,
        simulate=jax.jit(lambda key: simulate_from(mix, key, p.n)),
        held_out=held_out,
        extensions=(mix, Predictive(log_lik, target="x", exact_lpd=exact_lpd)),
    )
