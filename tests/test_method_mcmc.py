"""HMC and NUTS against exact posteriors, their cost accounting, and the JAX
convergence diagnostics they report.

Tolerances: a Monte Carlo mean or sd must lie within Z = 4 of its standard errors of
the truth, per coordinate (two-sided normal tail 6e-5); the standard errors come
from ArviZ's ESS of the draws (:func:`vibench.metrics.estimates.draw_moments`).
R-hat: for chains that sample the target, each split-chain mean has variance
σ²/m_eff, m_eff = ESS/c for c = 2 × chains split chains, so B/W ≈ (m/m_eff) F with
F ~ χ²_{c−1}/(c − 1), and R̂ − 1 ≈ c F/(2 ESS) − 1/(2m). Per coordinate, for the
bulk (rank-normalized draws) and the tail (folded draws) forms alike, we require
R̂ ≤ 1 + c F₁₀₋₄/(2 ESS) with F₁₀₋₄ the 1e-4 upper quantile of F (4.27 for c = 8)
and ESS that of the same normalized draws, and R̂ ≥ 1 − 1/m.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fit
from scipy.stats import chi2

from vibench.methods._mcmc import nuts_iteration_cost
from vibench.methods.mcmc import HMCConfig, NUTSConfig
from vibench.metrics.estimates import draw_moments
from vibench.numerics.mcmc_diagnostics import basic_ess, basic_rhat, ess_bulk, rhat, split_chains, z_scale

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

Z = 4.0


def valid_draws(approx) -> np.ndarray:
    return np.asarray(approx.params["draws"], np.float64)[:, : int(approx.params["num_valid"])]


def assert_moments_match(task, draws: np.ndarray) -> None:
    mean, sd, mean_se, sd_se = draw_moments(draws, kind="mcmc")
    ref = task.reference
    assert np.all(np.abs(mean - np.asarray(ref.mean)) <= Z * mean_se)
    assert np.all(np.abs(sd - np.asarray(ref.std)) <= Z * sd_se)


def assert_converged(approx) -> None:
    """R-hat within its sampling noise for every coordinate, bulk and tail; the
    reported diagnostics are the extremes of those."""
    draws = jnp.asarray(valid_draws(approx))
    chains, n, dim = draws.shape
    c = 2 * chains
    f_quantile = chi2.ppf(1 - 1e-4, c - 1) / (c - 1)
    smallest_ess, largest_rhat = np.inf, 0.0
    for coordinate in range(dim):
        split, mask = split_chains(draws[..., coordinate], n)
        folded = jnp.abs(split - jnp.median(split))
        for form, values in (("bulk", split), ("tail", folded)):
            normal_scores = z_scale(values, mask)
            r = float(basic_rhat(normal_scores, mask))
            ess = float(basic_ess(normal_scores, mask))
            assert 1 - 1 / (n // 2) <= r <= 1 + c * f_quantile / (2 * ess), (coordinate, form, r, ess)
            largest_rhat = max(largest_rhat, r)
            if form == "bulk":
                smallest_ess = min(smallest_ess, ess)
    assert float(approx.diagnostics["rhat_max"]) == pytest.approx(largest_rhat, rel=1e-5)
    assert float(approx.diagnostics["ess_bulk_min"]) == pytest.approx(smallest_ess, rel=1e-4)


# ------------------------------------------------------------------ diagnostics
PADDED_LENGTH = 540  # one compiled shape for every case below; num_valid varies


def _ar1(rng, n: int, phi: float, offset: float, chains: int = 4) -> np.ndarray:
    x = np.zeros((chains, n))
    noise = rng.normal(size=(chains, n))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return (x + offset * np.arange(chains)[:, None]).astype(np.float32)


def _assert_diagnostics_match_arviz(x: np.ndarray, rng) -> None:
    """Our ESS and R-hat of x, padded with junk past its length, equal ArviZ's of x."""
    n = x.shape[1]
    junk = 100 * rng.normal(size=(x.shape[0], PADDED_LENGTH - n)).astype(np.float32)
    padded = jnp.asarray(np.concatenate([x, junk], axis=1))
    dataset = az.convert_to_dataset({"x": x})
    assert float(jax.jit(ess_bulk)(padded, n)) == pytest.approx(float(az.ess(dataset, method="bulk")["x"]), rel=1e-5)
    assert float(jax.jit(rhat)(padded, n)) == pytest.approx(float(az.rhat(dataset, method="rank")["x"]), rel=1e-6)


@pytest.mark.parametrize(
    "n, phi, offset",
    [(500, 0.0, 0.0), (500, 0.9, 0.0), (501, 0.5, 0.3), (100, 0.95, 1.0), (300, -0.5, 0.0)],
)
def test_diagnostics_match_arviz(n, phi, offset):
    # Independent, autocorrelated, unmixed (offset chains) and antithetic (ESS > N)
    # chains, with an even and an odd number of draws.
    rng = np.random.default_rng(0)
    _assert_diagnostics_match_arviz(_ar1(rng, n, phi, offset), rng)


def test_diagnostics_handle_ties():
    # Rejected proposals repeat a draw: ranks must be averaged over ties as ArviZ does.
    rng = np.random.default_rng(1)
    _assert_diagnostics_match_arviz(np.repeat(_ar1(rng, 100, 0.3, 0.0), 3, axis=1), rng)


# ------------------------------------------------------------------ budgets
# Budgets: tests/test_budget.py checks every method's budget against its own cost model.


# ------------------------------------------------------------------ samplers
def test_hmc_matches_linreg_posterior(registry):
    task, _, approx = fit(registry, "linreg", "hmc")
    config = HMCConfig()
    draws = valid_draws(approx)
    assert draws.shape == (config.num_chains, config.num_samples, 6)
    assert_moments_match(task, draws)
    assert_converged(approx)
    # The cost is known in advance: one gradient per chain at the start, num_steps per iteration.
    iterations = config.num_warmup + config.num_samples
    assert int(approx.grad_evals) == config.num_chains * (1 + iterations * config.num_steps)
    assert int(approx.diagnostics["divergences"]) == 0
    assert 0.5 < float(approx.diagnostics["accept_prob"]) <= 1.0


def test_nuts_stops_within_its_budget(registry):
    # Uncapped, NUTS spends about 71 000 evaluations on linreg (4 chains × 1000
    # iterations); a cap of 60 000 stops it during sampling, before any iteration that
    # could overrun, so it ends within one worst-case iteration (4 × 1023) of the cap.
    cap = 60_000
    task, _, approx = fit(registry, "linreg", f"nuts[max_grad_evals={cap}]")
    config = NUTSConfig()
    spent = int(approx.grad_evals)
    assert cap - nuts_iteration_cost(config) < spent <= cap
    num_valid = int(approx.params["num_valid"])
    assert 0 < num_valid < config.num_samples
    assert int(approx.steps) == config.num_warmup + num_valid
    assert approx.stop_reason == "budget"
    draws = np.asarray(approx.params["draws"])
    assert np.all(np.isfinite(draws[:, :num_valid])) and np.all(np.isnan(draws[:, num_valid:]))
    trace = np.asarray(approx.trace)
    assert np.all(np.isfinite(trace[: int(approx.steps)])) and np.all(np.isnan(trace[int(approx.steps) :]))
    assert_moments_match(task, valid_draws(approx))
    assert_converged(approx)


@pytest.mark.slow
@pytest.mark.parametrize("method_spec", ["nuts", "hmc"])
@pytest.mark.parametrize("task_spec", ["gaussian", "linreg"])
def test_samplers_match_gaussian_posteriors(registry, task_spec, method_spec):
    task, _, approx = fit(registry, task_spec, method_spec)
    assert int(approx.params["num_valid"]) == NUTSConfig().num_samples
    assert approx.stop_reason == "max_steps"
    assert_moments_match(task, valid_draws(approx))
    assert_converged(approx)
    assert int(approx.diagnostics["divergences"]) == 0


@pytest.mark.slow
def test_rhat_flags_chains_in_different_modes(registry):
    # Four modes 10 sd apart: NUTS chains cannot cross between them, so chains that
    # settle in different modes disagree and R-hat is far above 1 (it is about
    # sqrt(1 + between/within) ≫ 1 when the between-mode variance dwarfs the unit one).
    _, _, approx = fit(registry, "mixture", "nuts")
    chain_means = valid_draws(approx).mean(axis=1)
    assert np.ptp(chain_means, axis=0).max() > 5  # the chains did settle in different modes
    assert float(approx.diagnostics["rhat_max"]) > 1.5
