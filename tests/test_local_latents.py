"""Local latents at scale: posteriors of independent Gaussian blocks (ppca), the
block-diagonal family, CAVI and ``exact`` on blocks, and memory-bounded metrics.

Block closed forms are checked against the dense ones on a small ppca (the dense
covariance built here, in the test, from the blocks). Tolerances are float32
rounding: relative ~1e-6 per operation, KLs of a few nats to ~1e-4.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fit

from vibench.families.gaussian import (
    FULLRANK_MAX_DIM,
    BlockDiagonal,
    FullRank,
    LowRank,
    MeanField,
    standard_normal_rows,
)
from vibench.harness.runner import logdensity_of
from vibench.metrics.estimates import StreamingMoments, draw_moments
from vibench.metrics.evaluation import DISTANCE_MAX_DIM, Evaluation, bytes_per_draw, chunk_size, evaluate
from vibench.metrics.importance import pareto_smooth
from vibench.structure.conjugate import BlockGaussian, gaussian_kl, meanfield_kl_optimum, mvn_log_prob

SMALL_PPCA = "ppca[n=7,d=4,k=3,sigma=0.3]"


def dense_of_blocks(blocks: jax.Array) -> np.ndarray:
    """The block-diagonal matrix of ``blocks`` (N, K, K), float64."""
    return np.asarray(jax.scipy.linalg.block_diag(*np.asarray(blocks, np.float64)))


def perturbed(family, dim: int, seed: int = 0):
    """Parameters of ``family`` away from its init, so every parameter matters."""
    params = family.init(jax.random.normal(jax.random.key(seed), (dim,)), 0.7)
    keys = iter(jax.random.split(jax.random.key(seed + 1), len(params)))
    return {name: value + 0.2 * jax.random.normal(next(keys), value.shape) for name, value in params.items()}


# ------------------------------------------------------------------ row-exact noise
@pytest.mark.parametrize("start, count, dim", [(0, 5, 7), (3, 4, 7), (1000, 17, 100)])
def test_noise_rows_are_the_rows_of_the_whole_draw(start, count, dim):
    key = jax.random.key(11)
    whole = jax.random.normal(key, ((start + count) * dim,)).reshape(-1, dim)
    rows = jax.jit(standard_normal_rows, static_argnums=(2, 3, 4))(key, start, count, dim, jnp.float32)
    np.testing.assert_array_equal(np.asarray(rows), np.asarray(whole[start:]))


@pytest.mark.parametrize("family", [MeanField(), FullRank(), LowRank(rank=2), BlockDiagonal(block=3)])
def test_sample_rows_are_rows_of_sample_and_log_prob(family):
    params, key = perturbed(family, 12), jax.random.key(5)
    z, log_q = jax.jit(family.sample_and_log_prob, static_argnums=2)(params, key, 64)
    rows, rows_log_q = jax.jit(family.sample_rows, static_argnums=3)(params, key, 20, 30)
    np.testing.assert_array_equal(np.asarray(rows), np.asarray(z[20:50]))
    np.testing.assert_allclose(rows_log_q, log_q[20:50], rtol=1e-6)  # a sum over dim: rounding
    np.testing.assert_allclose(family.log_prob(params, z), log_q, rtol=1e-5)


# ------------------------------------------------------------------ block family
def test_block_family_agrees_with_its_dense_gaussian():
    family = BlockDiagonal(block=3)
    params = perturbed(family, 12)
    mean, cov = (np.asarray(a, np.float64) for a in family.gaussian(params))
    blocks = family.blocks(params, 3)
    np.testing.assert_allclose(dense_of_blocks(blocks.cov), cov, rtol=1e-5, atol=1e-6)
    logdet = np.linalg.slogdet(cov)[1]
    assert float(blocks.logdet) == pytest.approx(logdet, rel=1e-5)
    entropy = 0.5 * (12 * (1 + np.log(2 * np.pi)) + logdet)
    assert float(family.entropy(params)) == pytest.approx(entropy, rel=1e-5)
    z = family.sample(params, jax.random.key(0), 5)
    dense_log_q = jax.vmap(lambda x: mvn_log_prob(x, jnp.asarray(mean), jnp.linalg.cholesky(jnp.asarray(cov))))(z)
    np.testing.assert_allclose(family.log_prob(params, z), dense_log_q, rtol=1e-5)
    marginals = family.blocks(params, 1)
    np.testing.assert_allclose(marginals.cov[:, 0, 0], np.diag(cov), rtol=1e-5)


@pytest.mark.parametrize("family", [MeanField(), FullRank(), LowRank(rank=2)])
def test_dense_families_give_their_covariance_blocks(family):
    params = perturbed(family, 12)
    _, cov = (np.asarray(a, np.float64) for a in family.gaussian(params))
    blocks = family.blocks(params, 4)
    np.testing.assert_allclose(dense_of_blocks(blocks.cov), cov * np.kron(np.eye(3), np.ones((4, 4))), rtol=1e-5, atol=1e-6)
    assert float(blocks.logdet) == pytest.approx(np.linalg.slogdet(cov)[1], rel=1e-5, abs=1e-5)
    assert family.blocks(params, 5) is None  # 12 coordinates are no blocks of 5


def test_fullrank_refuses_too_many_dimensions():
    with pytest.raises(ValueError, match="use family=meanfield"):
        FullRank().init(jnp.zeros(FULLRANK_MAX_DIM + 1), 1.0)


# ------------------------------------------------------------------ block posterior
def test_block_posterior_closed_forms_equal_the_dense_ones(registry):
    task = registry.task(SMALL_PPCA)
    ref = task.reference
    assert ref.gaussian is None and ref.blocks is not None
    precision, shift = (np.asarray(a, np.float64) for a in task.extension(BlockGaussian).blocks(task.data))
    dense_precision = dense_of_blocks(precision)
    cov = np.linalg.inv(dense_precision)
    mean = cov @ shift.reshape(-1)
    np.testing.assert_allclose(ref.mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ref.std, np.sqrt(np.diag(cov)), rtol=1e-5)
    optimum = float(meanfield_kl_optimum(jnp.asarray(cov)))
    assert ref.log_evidence - ref.meanfield_elbo == pytest.approx(optimum, rel=1e-4)
    z = ref.sample(jax.random.key(0), 3)
    chol = jnp.linalg.cholesky(jnp.asarray(cov, jnp.float32))
    dense_log_p = jax.vmap(lambda x: mvn_log_prob(x, jnp.asarray(mean, jnp.float32), chol))(z)
    np.testing.assert_allclose(jax.vmap(ref.log_prob)(z), dense_log_p, rtol=1e-5)
    for family in (MeanField(), FullRank(), BlockDiagonal(block=3)):
        params = perturbed(family, ref.mean.shape[0])
        q_mean, q_cov = family.gaussian(params)
        dense_kl = float(gaussian_kl(q_mean, q_cov, jnp.asarray(mean, jnp.float32), jnp.asarray(cov, jnp.float32)))
        assert float(ref.blocks.kl(*family.blocks(params, 3))) == pytest.approx(dense_kl, rel=1e-4)


def test_cavi_reaches_the_meanfield_optimum_and_exact_the_posterior(registry):
    task, ld, cavi = fit(registry, "ppca", "cavi")
    ref = task.reference
    precision, _ = task.extension(BlockGaussian).blocks(task.data)
    np.testing.assert_allclose(cavi.params["loc"], ref.mean, atol=1e-4)
    variances = 1 / np.asarray(jnp.diagonal(precision, axis1=-2, axis2=-1)).reshape(-1)
    np.testing.assert_allclose(np.exp(2 * cavi.params["log_scale"]), variances, rtol=1e-5)
    assert cavi.stop_reason == "converged"
    optimum = ref.log_evidence - ref.meanfield_elbo
    metrics = evaluate(task, ld, cavi, jax.random.key(1))
    assert metrics["kl"].value == pytest.approx(optimum, abs=1e-3)
    assert abs(metrics["family_gap"].value) <= 4 * metrics["family_gap"].stderr + 1e-3
    _, _, exact = fit(registry, "ppca", "exact")
    assert isinstance(exact.family, BlockDiagonal)
    assert float(exact.trace[0]) == pytest.approx(ref.log_evidence, abs=1e-3)
    metrics = evaluate(task, ld, exact, jax.random.key(1))
    assert abs(metrics["kl"].value) < 1e-3 and abs(metrics["family_gap"].value) < 1e-3


# ------------------------------------------------------------------ bounded metrics
def test_streaming_moments_equal_draw_moments():
    draws = np.random.default_rng(0).normal(3.0, 0.5, (1, 1000, 4)) ** 3
    streamed = StreamingMoments()
    for start in range(0, 1000, 300):
        streamed.add(draws[0, start : start + 300])
    for got, want in zip(streamed.result(), draw_moments(draws, "iid")):
        np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("task_spec, method_spec", [("linreg", "advi"), ("gaussian", "advi[family=fullrank]")])
def test_chunked_and_whole_evaluations_agree(registry, task_spec, method_spec):
    # The same draws whatever the chunk size; only float32 sums over dim round apart.
    task, ld, approx = fit(registry, task_spec, method_spec)
    key = jax.random.key(3)
    whole = Evaluation(task, ld, approx, key, 4096)
    budget = 300 * bytes_per_draw(ld.dim, task.data)
    chunked = Evaluation(task, ld, approx, key, 4096, budget=budget)
    assert whole.chunk == 4096 and chunked.chunk == 300
    # log w = log p − log q, each O(10) here: float32 rounding ~1e-6 absolute
    np.testing.assert_allclose(chunked.log_weights, whole.log_weights, rtol=1e-6, atol=1e-5)
    a, b = evaluate(task, ld, approx, key), evaluate(task, ld, approx, key, budget=budget)
    assert a.keys() == b.keys() and {"kl", "mean_error", "w1_mean", "mmd"} <= a.keys()
    for name in a:
        assert b[name].value == pytest.approx(a[name].value, rel=1e-4, abs=1e-5), name


def test_chunks_honour_the_budget_and_large_tasks_skip_distances(registry):
    task = registry.task(f"ppca[n={DISTANCE_MAX_DIM // 2 + 1}]")  # 2 coordinates per point
    ld = logdensity_of(task)
    budget = 2**20
    size = chunk_size(ld.dim, task.data, 4096, budget)
    assert size * bytes_per_draw(ld.dim, task.data) <= budget < (size + 1) * bytes_per_draw(ld.dim, task.data)
    _, _, approx = fit(registry, f"ppca[n={DISTANCE_MAX_DIM // 2 + 1}]", "cavi")
    ev = Evaluation(task, ld, approx, jax.random.key(0), 512, budget=budget)
    assert ev.chunk == size < 512 and ev.distance_samples is None
    assert np.isfinite(ev.log_weights).all() and ev.log_weights.shape == (512,)
    metrics = evaluate(task, ld, approx, jax.random.key(0), 512, budget=budget)
    assert "w1_mean" not in metrics and "mmd" not in metrics
    assert metrics["kl"].value == pytest.approx(task.reference.log_evidence - task.reference.meanfield_elbo, abs=1e-2)


def test_ratios_within_float32_rounding_of_a_large_log_joint_have_no_tail():
    # An exact q on ppca[n=50000]: log w = log p(x) ≈ −3.3e5 exactly, stored in float32
    # (ulp 0.03 nats), so the ratios differ by a few ulps only: no tail to fit. The same
    # spread about −50 is real variation (0.06 ≫ 8 ulps = 5e-5) and is fitted.
    rng = np.random.default_rng(0)
    ulps = rng.integers(-1, 2, 4096) * np.spacing(np.float32(3.3e5))
    assert pareto_smooth(np.float32(-3.3e5) + ulps.astype(np.float64)).khat is None
    assert pareto_smooth(-50.0 + rng.normal(0, 0.02, 4096)).khat is not None
