"""Fit time of vibench's gmm_cavi against scikit-learn's BayesianGaussianMixture (issue
13): the same priors, the same initial responsibilities and the same number of
iterations (tol = 0), so both do the same work.

Benchmark run (gmm[k=3,d=2,n=5000], 100 iterations; both times printed side by side)::

    pytest benchmarks/test_bench_gmm.py --benchmark-enable -n 0 -p no:cacheprovider -s

With benchmarks disabled (pyproject's default) each fit runs once on n = 200 with 5
iterations: a smoke test of the same code.
"""

from __future__ import annotations

import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vibench.methods._gmm_cavi import run_cavi
from vibench.tasks._gmm import flat_maps, mixture_prior, simulated_data
from vibench.tasks.gmm import GMMParams

sklearn_mixture = pytest.importorskip("sklearn.mixture")


def _problem(enabled: bool):
    p = GMMParams(k=3, d=2, n=5000 if enabled else 200, separation=3.0)
    mix = mixture_prior(p, *flat_maps(p.k, p.d))
    x = np.asarray(simulated_data(p)[0]["x"], np.float64)
    r0 = np.random.default_rng(0).dirichlet(np.ones(p.k), size=p.n)
    return mix, x, r0, 100 if enabled else 5


def _vibench_fit(mix, x, r0, iterations):
    run = jax.jit(lambda x, r: run_cavi(mix, x, r, iterations, 0.0))
    x32, r32 = jnp.asarray(x, jnp.float32), jnp.asarray(r0, jnp.float32)
    jax.block_until_ready(run(x32, r32))  # compile once, outside the timing
    return lambda: jax.block_until_ready(run(x32, r32))


def _sklearn_fit(mix, x, r0, iterations):
    class FixedStart(sklearn_mixture.BayesianGaussianMixture):
        def _initialize_parameters(self, X, random_state, xp=None):
            self._initialize(X, r0.copy())

    model = FixedStart(
        n_components=mix.k, covariance_type="full", weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=mix.alpha0, mean_precision_prior=mix.beta0, mean_prior=np.asarray(mix.m0),
        degrees_of_freedom_prior=mix.nu0, covariance_prior=np.linalg.inv(np.asarray(mix.w0, np.float64)),
        reg_covar=0.0, tol=0.0, max_iter=iterations,
    )

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: tol = 0 runs every iteration
            model.fit(x)

    return fit


@pytest.mark.parametrize("name, make", [("vibench_cavi", _vibench_fit), ("sklearn_bgm", _sklearn_fit)])
def test_bench_gmm_fit(benchmark, name, make):
    problem = _problem(benchmark.enabled)
    benchmark.group = "gmm fit"
    benchmark.pedantic(make(*problem), rounds=5, warmup_rounds=1)


def test_side_by_side_fit_times(pytestconfig):
    """Both fits timed in one run on the same machine (best of 3), printed together."""
    problem = _problem(bool(pytestconfig.getoption("benchmark_enable")))
    seconds = {}
    for name, make in (("vibench gmm_cavi", _vibench_fit), ("sklearn BayesianGaussianMixture", _sklearn_fit)):
        fit = make(*problem)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fit()
            times.append(time.perf_counter() - start)
        seconds[name] = min(times)
    n, iterations = problem[1].shape[0], problem[3]
    print(f"\ngmm k=3 d=2 n={n}, {iterations} iterations (best of 3):")
    for name, value in seconds.items():
        print(f"  {name:34s} {value * 1e3:9.2f} ms")
    print(f"  ratio vibench / sklearn            {seconds['vibench gmm_cavi'] / seconds['sklearn BayesianGaussianMixture']:9.2f}")
    assert all(value > 0 for value in seconds.values())
