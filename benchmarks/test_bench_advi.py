"""Fit time of vibench's ADVI against a hand-written loop and NumPyro's SVI.run (issue
"vibench's ADVI overhead"); see ``benchmarks/advi_fits.py`` for what each fit is.

Benchmark run (ppca[n=500], 2000 steps; fit-time ratios printed at the end)::

    pytest benchmarks/test_bench_advi.py --benchmark-enable -n 0 -p no:cacheprovider

With benchmarks disabled (pyproject's default) every test runs once on ppca[n=20]
with 20 steps: a smoke test of the same code. The non-benchmark tests check that the
comparison is fair: the hand-written log joint is vibench's, the hand-written fit
reproduces vibench's fit number for number, and SVI targets the same ELBO.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.advi_fits import (
    BENCHMARK,
    BUILDERS,
    SMOKE,
    Fit,
    Problem,
    build_problem,
    numpyro_svi,
    ppca_log_joint,
)
from vibench.families.gaussian import MeanField
from vibench.harness.runner import logdensity_of

WARMUP_ROUNDS = 1
ROUNDS = 7


@pytest.fixture(scope="module")
def problem(pytestconfig: pytest.Config) -> Problem:
    """``ppca[n=500]`` with default ADVI when benchmarking; :data:`SMOKE` when benchmarks
    are disabled, so the default run stays a cheap smoke test of the same code."""
    enabled = pytestconfig.getoption("benchmark_enable") or not pytestconfig.getoption(
        "benchmark_disable"
    )
    return build_problem(BENCHMARK if enabled else SMOKE)


@pytest.fixture(scope="module")
def fits(problem: Problem) -> dict[str, Fit]:
    """Every fit of :data:`BUILDERS`, compiled once for the module."""
    return {name: build(problem) for name, build in BUILDERS.items()}


@pytest.mark.benchmark(group="advi fit time")
@pytest.mark.parametrize("fit_name", list(BUILDERS))
def test_fit_time(
    benchmark, record_fit_stats, problem: Problem, fits: dict[str, Fit], fit_name: str
):
    fit = fits[fit_name]
    benchmark.extra_info.update(
        task=problem.task.label, method=problem.choice.label, compile_s=fit.compile_s
    )
    result = benchmark.pedantic(fit.run, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS)
    record_fit_stats(fit_name, benchmark)
    elbo = fit.elbo_trace(result)
    assert elbo.shape == (problem.choice.config.steps,)
    assert bool(jnp.all(jnp.isfinite(elbo)))


def test_log_joint_equals_vibench_logp(problem: Problem):
    """The baseline's jax.numpy log joint is the density vibench derives from the model."""
    logdensity = logdensity_of(problem.task)
    x = problem.task.data["x"]
    points = 2.0 * jax.random.normal(jax.random.key(1), (3, logdensity.dim))
    points = jnp.concatenate([points, problem.task.reference.mean[None]])
    ours = jax.jit(jax.vmap(lambda z: ppca_log_joint(problem.loadings, z, x)))(points)
    theirs = jax.jit(jax.vmap(logdensity.logp, in_axes=(0, None)))(points, problem.task.data)
    # float32 sums of ~n(k + d) terms: rounding stays well below 1e-5 relative,
    # while any missing or wrong term moves the sum by at least ~1 nat.
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_handwritten_fit_reproduces_vibench_fit(problem: Problem, fits: dict[str, Fit]):
    """Same draws, init, steps, optimizer and schedule: the two fits agree to rounding.

    Both compute the same quantities in float32 by algebraically equal formulas, so they
    differ by rounding (~1e-7 relative per operation, which Adam's normalized steps do
    not amplify), whereas a different draw, step count, initialization or learning rate
    moves the parameters by 1e-3 or more.
    """
    approx = fits["vibench"].run()
    params, trace = fits["handwritten"].run()
    np.testing.assert_allclose(trace, approx.trace, rtol=1e-5)
    np.testing.assert_allclose(params["loc"], approx.params["loc"], atol=1e-5)
    np.testing.assert_allclose(params["log_scale"], approx.params["log_scale"], atol=1e-5)


def test_svi_targets_vibench_elbo(problem: Problem):
    """AutoNormal + Trace_ELBO on the model estimates the ELBO vibench's ADVI maximizes.

    At one mean-field q (the posterior's means and standard deviations), vibench's
    per-draw ELBO terms and SVI's loss with as many particles are two independent
    Monte Carlo estimates of one number: they must agree within 5 standard errors.
    """
    draws = 1000
    task = problem.task
    logdensity = logdensity_of(task)
    family = MeanField()
    q = {"loc": task.reference.mean, "log_scale": jnp.log(task.reference.std)}
    key_vibench, key_svi = jax.random.split(jax.random.key(2))

    @jax.jit
    def elbo_terms(key: jax.Array) -> jax.Array:
        z = family.sample(q, key, draws)
        return jax.vmap(logdensity.logp, in_axes=(0, None))(z, task.data) - family.log_prob(q, z)

    terms = elbo_terms(key_vibench)

    svi = numpyro_svi(problem, num_particles=draws)
    shape = problem.latent_shape
    svi_params = {
        "z_auto_loc": q["loc"].reshape(shape),
        "z_auto_scale": task.reference.std.reshape(shape),
    }
    assert set(svi.get_params(svi.init(key_svi, task.data))) == set(svi_params)
    svi_loss = jax.jit(lambda key: svi.loss.loss(key, svi_params, task.model, svi.guide, task.data))
    svi_elbo = -float(svi_loss(key_svi))

    standard_error = float(jnp.std(terms)) * math.sqrt(2.0 / draws)
    assert abs(svi_elbo - float(jnp.mean(terms))) < 5 * standard_error
