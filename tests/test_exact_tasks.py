"""The exact tasks agree with their closed forms: the NumPyro model (through the
harness's LogDensity) and the independently written closed-form evidence and posterior
must tell the same story."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibench.logdensity import derive_logdensity
from vibench.structure.conjugate import BlockGaussian, ConjugateGaussian, block_logdet, log_evidence_identity

EXACT_TASKS = ["ppca", "ppca[n=7,d=4,k=3,sigma=0.3]", "linreg", "gaussian", "gaussian[dim=3,rho=-0.4]"]


def dense_posterior(ref):
    """(mean, cov) of an exact reference, the covariance built densely from its blocks
    when it has them (small tasks only)."""
    if ref.gaussian is not None:
        return ref.gaussian
    chol = ref.blocks.chol
    return ref.mean, jax.scipy.linalg.block_diag(*(chol @ jnp.swapaxes(chol, -1, -2)))


def check_closed_forms(task, rtol=2e-5):
    ld = derive_logdensity(task)
    mean, cov = dense_posterior(task.reference)
    assert ld.dim == mean.shape[0]
    # log p(x) = log p(x, μ) − log N(μ; μ, Σ) holds only if the model's joint and the
    # closed-form posterior and evidence agree (float32: relative rounding ~1e-6 per op).
    logp = jax.jit(ld.logp)
    identity = log_evidence_identity(logp(mean, task.data), cov)
    assert float(identity) == pytest.approx(task.reference.log_evidence, rel=rtol, abs=1e-3)
    # The log joint is quadratic with Hessian −Σ⁻¹ and its maximum at the posterior mean.
    grad = jax.jit(jax.grad(ld.logp))(mean, task.data)
    hess = jax.jit(jax.hessian(ld.logp))(mean, task.data)
    precision = jnp.linalg.inv(cov)
    scale = float(jnp.max(jnp.abs(precision)))
    assert float(jnp.max(jnp.abs(hess + precision))) < 1e-4 * scale
    assert float(jnp.max(jnp.abs(grad))) < 1e-3 * scale


@pytest.mark.parametrize("spec", EXACT_TASKS)
def test_model_matches_closed_forms(registry, spec):
    check_closed_forms(registry.task(spec))


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(1, 12),
    d=st.integers(1, 6),
    k=st.integers(1, 6),
    sigma=st.floats(0.2, 3.0),
    seed=st.integers(0, 2**16),
)
def test_ppca_closed_forms_for_any_size(registry, n, d, k, sigma, seed):
    if k > d:
        k = d
    check_closed_forms(registry.task(f"ppca[n={n},d={d},k={k},sigma={sigma},data_seed={seed}]"))


@settings(max_examples=5, deadline=None)
@given(dim=st.integers(1, 8), rho=st.floats(-0.1, 0.95), seed=st.integers(0, 100))
def test_linreg_and_gaussian_closed_forms(registry, dim, rho, seed):
    check_closed_forms(registry.task(f"gaussian[dim={dim},rho={rho}]"))
    check_closed_forms(registry.task(f"linreg[d={dim},feature_rho={rho},data_seed={seed}]"))


def test_linreg_default_posterior_is_strongly_correlated(registry):
    _, cov = registry.task("linreg").reference.gaussian
    sd = jnp.sqrt(jnp.diag(cov))
    corr = cov / sd[:, None] / sd[None, :]
    off = np.abs(np.asarray(corr))[~np.eye(corr.shape[0], dtype=bool)]
    assert off.max() >= 0.9


def test_meanfield_optimum_of_bivariate_gaussian(registry):
    # For a bivariate Gaussian with correlation ρ the best factorized Gaussian loses
    # exactly −½ log(1 − ρ²) nats (Bishop 2006, §10.1.2).
    rho = 0.9
    ref = registry.task(f"gaussian[dim=2,rho={rho}]").reference
    assert ref.log_evidence - ref.meanfield_elbo == pytest.approx(-0.5 * np.log(1 - rho**2), rel=1e-5)


@pytest.mark.parametrize("spec", ["ppca", "linreg", "gaussian"])
def test_simulate_matches_the_model(registry, spec):
    task = registry.task(spec)
    params, data = task.simulate(jax.random.key(1))
    assert jax.tree_util.tree_structure(data) == jax.tree_util.tree_structure(task.data)
    for leaf, ref in zip(jax.tree_util.tree_leaves(data), jax.tree_util.tree_leaves(task.data)):
        assert leaf.shape == ref.shape
    ld = derive_logdensity(task)
    assert set(params) == set(ld.site_shapes)
    # Natural parameters are defined for simulated data too (SBC needs them).
    if task.extension(BlockGaussian) is not None:
        precision, shift = task.extension(BlockGaussian).blocks(data)
        assert precision.shape == shift.shape + shift.shape[-1:] and shift.size == ld.dim
    else:
        precision, shift = task.extension(ConjugateGaussian).natural_params(data)
        assert precision.shape == (ld.dim, ld.dim) and shift.shape == (ld.dim,)


def test_ppca_exact_sampler_moments(registry):
    # Exact posterior draws: the sample mean is within 4 standard errors per dimension.
    ref = registry.task("ppca").reference
    n = 20_000
    draws = np.asarray(ref.sample(jax.random.key(0), n))
    z = (draws.mean(0) - np.asarray(ref.mean)) / (np.asarray(ref.std) / np.sqrt(n))
    assert np.abs(z).max() < 4.5  # 200 dims: P(max |N(0,1)| > 4.5) ≈ 1e-3
    # E[log p(z)] under its own draws is minus the entropy: a check that log_prob is the
    # normalized density of the sampler (within 4 standard errors of the mean).
    log_probs = np.asarray(jax.jit(jax.vmap(ref.log_prob))(draws[:4000]))
    logdet = float(block_logdet(ref.blocks.chol))  # ppca's posterior: independent blocks
    entropy = 0.5 * (ref.mean.shape[0] * (1 + np.log(2 * np.pi)) + logdet)
    assert abs(log_probs.mean() + entropy) < 4 * log_probs.std() / np.sqrt(log_probs.size)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("ppca[k=9]", "k <= d"),
        ("linreg[feature_rho=1.5]", "feature_rho"),
        ("gaussian[dim=3,rho=-0.9]", "positive definite"),
    ],
)
def test_invalid_task_parameters_say_what_is_valid(registry, spec, message):
    from vibench.spec import SpecError

    with pytest.raises(SpecError, match=message):
        registry.task(spec)
