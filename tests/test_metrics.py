"""Metrics against closed forms: ELBO, log p(x), KL, standard errors, and absence.

Tolerances come from the estimates' own standard errors (4 se: a false failure
about once in 16 000 runs) or from the sampling distribution of a standard-error
estimate over replicates; every seed is fixed.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.signal import lfilter
from synthetic import draws, fullrank, meanfield, task_of

from vibench.core import Approximation, Reference, Task
from vibench.logdensity import derive_logdensity
from vibench.metrics.estimates import Estimate, draw_moments, rms_with_se
from vibench.metrics.evaluation import DISTANCE_DRAWS, METRIC_DRAWS, Evaluation, evaluate
from vibench.metrics.importance import log_px_is
from vibench.structure.conjugate import gaussian_reference

LOG_Z = -3.7
MEAN = np.array([0.5, -1.0, 2.0])
COV = np.array([[1.0, 0.6, 0.2], [0.6, 2.0, -0.5], [0.2, -0.5, 0.5]])


# ----------------------------------------------------------------------- helpers
def gaussian_task(mean=MEAN, cov=COV, log_z=LOG_Z, reference: Reference | None = None) -> Task:
    """Posterior N(mean, cov) with evidence exp(log_z): log p(x, z) = log_z + log N(z; mean, cov)."""
    target = dist.MultivariateNormal(jnp.asarray(mean), covariance_matrix=jnp.asarray(cov))

    def model(data):
        numpyro.sample("z", target)
        numpyro.factor("evidence", log_z)

    if reference is None:
        reference = gaussian_reference(jnp.asarray(mean), jnp.asarray(cov), log_z, "closed form")
    return task_of(model, reference)


def run(task: Task, approx: Approximation, seed: int = 0, n_draws: int = METRIC_DRAWS):
    return evaluate(task, derive_logdensity(task), approx, jax.random.key(seed), n_draws)


def gaussian_kl(m_q, s_q, m_p, s_p) -> float:
    """KL(N(m_q, s_q) ‖ N(m_p, s_p)) in float64."""
    p_inv = np.linalg.inv(s_p)
    diff = m_q - m_p
    _, logdet_p = np.linalg.slogdet(s_p)
    _, logdet_q = np.linalg.slogdet(s_q)
    return 0.5 * (np.trace(p_inv @ s_q) + diff @ p_inv @ diff - m_q.size + logdet_p - logdet_q)


# ----------------------------------------------------------------------- ELBO, log p(x), KL
MF_LOC = MEAN + np.array([0.3, -0.2, 0.1])
MF_SCALE = np.array([0.8, 1.1, 0.6])


def test_elbo_matches_closed_form_within_its_stderr():
    # For Gaussian q and a Gaussian posterior, ELBO = log p(x) − KL(q ‖ p) exactly.
    exact = LOG_Z - gaussian_kl(MF_LOC, np.diag(MF_SCALE**2), MEAN, COV)
    est = run(gaussian_task(), meanfield(MF_LOC, MF_SCALE))["elbo"]
    assert est.stderr > 0
    assert abs(est.value - exact) < 4 * est.stderr


def test_kl_equals_log_evidence_minus_exact_elbo():
    results = run(gaussian_task(), meanfield(MF_LOC, MF_SCALE))
    exact_elbo = LOG_Z - gaussian_kl(MF_LOC, np.diag(MF_SCALE**2), MEAN, COV)
    # float32 arithmetic in vibench (relative rounding ~1e-7 on terms of size ~10).
    assert results["kl"].value == pytest.approx(results["log_px"].value - exact_elbo, abs=1e-4)
    assert results["kl"].stderr == 0.0
    assert results["log_px"] == Estimate(LOG_Z)


def test_log_px_is_converges_within_its_stderr():
    # q = N(μ + shift, 1.5 Σ) is wider than p in every direction, so the ratios are
    # bounded (finite variance, k ≤ 0) and the delta-method stderr is valid.
    task = gaussian_task()
    approx = fullrank(MEAN + 0.3 * np.sqrt(np.diag(COV)), 1.5 * COV)
    logdensity = derive_logdensity(task)
    estimates = [
        log_px_is(Evaluation(task, logdensity, approx, jax.random.key(1), n))
        for n in (1024, 16384, 262144)
    ]
    for est in estimates:
        assert abs(est.value - LOG_Z) < 4 * est.stderr
    # 16× the draws: the stderr shrinks by √16 = 4 (2.5 allows for its own noise).
    for coarse, fine in itertools.pairwise(estimates):
        assert fine.stderr < coarse.stderr / 2.5
    assert abs(estimates[-1].value - LOG_Z) < 0.01


def test_log_px_is_has_no_stderr_when_the_ratios_have_infinite_variance():
    # p = N(0, 4² I₂), q = N(0, I₂): |z|²/2 ~ Exp(1), so w ∝ exp((1 − 1/16)|z|²/2) is exactly
    # Pareto with k = 15/16 > 0.5 (k-hat's sd at S = 65536 is (1 + k)/√768 = 0.07).
    task = gaussian_task(np.zeros(2), 16 * np.eye(2), 0.0)
    results = run(task, meanfield(np.zeros(2), np.ones(2)), n_draws=65536)
    assert results["khat"].value > 0.5
    assert math.isnan(results["log_px_is"].stderr)
    assert results["log_px_is"].value < 0.0  # a stochastic lower bound, far below here


# ----------------------------------------------------------------------- rms_with_se
finite = st.floats(-10, 10, allow_nan=False, width=64)
errors_and_se = st.integers(1, 30).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=finite),
        arrays(np.float64, n, elements=st.floats(0, 5, width=64)),
    )
)


@settings(max_examples=60, deadline=None)
@given(errors_and_se, st.randoms(use_true_random=False), st.floats(0.01, 100))
def test_rms_with_se_invariances(pair, rnd, scale):
    errors, se = pair
    base = rms_with_se(errors, se)
    order = list(range(errors.size))
    rnd.shuffle(order)
    signs = np.array([rnd.choice((-1.0, 1.0)) for _ in order])
    permuted = rms_with_se(errors[order] * signs, se[order])
    scaled = rms_with_se(scale * errors, scale * se)
    assert permuted.value == pytest.approx(base.value, rel=1e-9, abs=1e-12)
    assert permuted.stderr == pytest.approx(base.stderr, rel=1e-9, abs=1e-12)
    assert scaled.value == pytest.approx(scale * base.value, rel=1e-9, abs=1e-12)
    assert scaled.stderr == pytest.approx(scale * base.stderr, rel=1e-9, abs=1e-12)
    assert base.value == pytest.approx(math.sqrt(np.mean(errors**2)))
    assert base.stderr >= 0.0


def test_rms_with_se_is_exact_without_noise():
    assert rms_with_se(np.array([3.0, -4.0]), np.zeros(2)) == Estimate(math.sqrt(12.5), 0.0)


@pytest.mark.parametrize("true_error", [0.0, 0.05, 0.3])
def test_rms_with_se_matches_replicate_spread(true_error):
    # 200 dimensions with noise sd 0.05 around a common true error: from pure noise
    # (where the first-order delta method is √2 too large) to signal. Over 400
    # replicates the empirical sd has relative sd 1/√798 ≈ 3.5%; allow 4 of them.
    rng = np.random.default_rng(7)
    se = np.full(200, 0.05)
    results = [rms_with_se(true_error + se * rng.standard_normal(200), se) for _ in range(400)]
    spread = np.std([r.value for r in results], ddof=1)
    reported = np.mean([r.stderr for r in results])
    assert reported / spread == pytest.approx(1.0, abs=0.15)


# ----------------------------------------------------------------------- draw_moments
def test_draw_moments_sd_error_holds_beyond_normal_draws():
    # Laplace draws (excess kurtosis 3): se(sd) = sd √((κ − 1)/(4n)) = √2·normal theory.
    # 300 replicates × 20 columns: the replicate sd of each column is known to 4%.
    rng = np.random.default_rng(3)
    sds, ses = [], []
    for _ in range(300):
        _, sd, _, sd_se = draw_moments(rng.laplace(size=(1, 2000, 20)), kind="iid")
        sds.append(sd)
        ses.append(sd_se)
    ratio = np.mean(ses, axis=0) / np.std(sds, axis=0, ddof=1)
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.04)
    normal_theory = np.sqrt(2.0) / np.sqrt(2 * 1999)
    assert np.mean(ses) / normal_theory == pytest.approx(math.sqrt(2.5), rel=0.05)


def test_a_particle_sets_moments_are_its_own_and_exact():
    # The particles are q: their mean and (population) sd are q's, with no error to estimate.
    particles = np.random.default_rng(3).standard_normal((1, 7, 3))
    mean, sd, mean_se, sd_se = draw_moments(particles, kind="particles")
    np.testing.assert_allclose(mean, particles[0].mean(axis=0))
    np.testing.assert_allclose(sd, particles[0].std(axis=0, ddof=0))
    assert np.all(mean_se == 0) and np.all(sd_se == 0)


def test_draw_moments_use_the_chains_effective_sample_size():
    # AR(1) chains z_t = φ z_{t−1} + ε_t, φ = 0.9: Var = 1/(1 − φ²); the mean's variance
    # is Var (1 + φ)/((1 − φ) N) and the sd's Var (1 + φ²)/(2 N (1 − φ²)) (the squared
    # deviations have autocorrelation φ^{2t}). ESS estimates vary by ~6% per column;
    # the average over 50 columns is known to ~1%.
    phi, chains, n, dim = 0.9, 4, 5000, 50
    rng = np.random.default_rng(11)
    z = lfilter([1.0], [1.0, -phi], rng.standard_normal((chains, n + 1000, dim)), axis=1)[:, 1000:]
    _, _, mean_se, sd_se = draw_moments(z, kind="mcmc")
    total, var = chains * n, 1 / (1 - phi**2)
    mean_theory = math.sqrt(var * (1 + phi) / ((1 - phi) * total))
    sd_theory = math.sqrt(var * (1 + phi**2) / (2 * total * (1 - phi**2)))
    assert np.mean(mean_se) / mean_theory == pytest.approx(1.0, abs=0.05)
    assert np.mean(sd_se) / sd_theory == pytest.approx(1.0, abs=0.05)
    assert np.all(np.abs(mean_se / mean_theory - 1) < 0.25)
    assert np.all(np.abs(sd_se / sd_theory - 1) < 0.25)


# ----------------------------------------------------------------------- applicability
def exact_draws(chains: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(COV)
    return (MEAN + rng.standard_normal((chains, n, 3)) @ chol.T).astype(np.float32)


def test_draws_without_density_get_only_draw_based_metrics():
    results = run(gaussian_task(), draws(exact_draws(4, 500), kind="mcmc"))
    assert set(results) == {"log_px", "mean_error", "std_error", "w1_mean", "w1_sliced", "mmd"}


def test_no_distances_without_reference_draws_or_without_enough_draws():
    task = gaussian_task()
    ref = task.reference
    no_sampler = gaussian_task(reference=Reference("moments only", mean=ref.mean, std=ref.std))
    results = run(no_sampler, meanfield(MF_LOC, MF_SCALE))
    assert not {"w1_mean", "w1_sliced", "mmd", "log_px", "kl", "family_gap"} & set(results)
    assert {
        "elbo",
        "log_px_is",
        "khat",
        "khat_flag",
        "is_ess",
        "mean_error",
        "psis_mean_error",
    } <= set(results)
    too_few = run(task, draws(exact_draws(2, DISTANCE_DRAWS // 2 - 1), kind="mcmc"))
    assert not {"w1_mean", "w1_sliced", "mmd"} & set(too_few)


def test_metrics_are_deterministic_given_the_key():
    task, approx = gaussian_task(), meanfield(MF_LOC, MF_SCALE)
    assert run(task, approx, seed=5) == run(task, approx, seed=5)
    assert run(task, approx, seed=5)["elbo"] != run(task, approx, seed=6)["elbo"]


def test_every_computed_metric_has_one_record():
    """Each metric the evaluation can write is described once (title, direction), and its
    deferred computation resolves."""
    from vibench.declarations import resolve
    from vibench.metrics.records import COMPUTED, METRICS

    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    for metric in COMPUTED:
        assert callable(resolve(metric.compute)) and metric.applies is not None and metric.title
