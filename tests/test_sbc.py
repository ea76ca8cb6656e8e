"""Simulation-based calibration: ranks, uniformity tests, the SBC loop, its results and CLI.

The statistics behind the thresholds:

- Under a calibrated method the ranks are i.i.d. discrete uniform on 0..L, and every
  p-value of :mod:`vibench.sbc.uniformity` is valid for that discrete null, so a test at
  level α rejects with probability at most α. The size checks simulate many uniform
  rank sets and bound the rejection rate by α plus 4 binomial standard errors (a
  false failure has probability < 1e-4); they also require at least α/2, so a test that
  never rejects fails.
- The end-to-end verdicts use Holm over every parameter and both uniformity tests, so
  a calibrated method (``exact``; full-rank ADVI, whose family contains the Gaussian
  posterior) is rejected with probability at most 5%, and each fixed seed below is one
  such draw, not a tuned one. Mean-field ADVI on linreg is under-dispersed by a factor
  ~0.3 in sd (posterior correlations ~ -0.9), which puts ~half of the true values
  outside the range of the 99 draws: p-values of 1e-80 and below, not a borderline case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from matplotlib.figure import Figure

from vibench.cli import main
from vibench.core import Approximation, Reference, Task
from vibench.declarations import Method
from vibench.families.draws import Draws
from vibench.families.gaussian import MeanField
from vibench.harness.runner import logdensity_of
from vibench.harness.store import read_metrics
from vibench.logdensity import derive_logdensity
from vibench.registry import MethodChoice
from vibench.sbc import DEFAULT_DRAWS, DEFAULT_REPLICATES, uniformity
from vibench.sbc.plots import ecdf_difference_figure, rank_histogram_figure, save_plots
from vibench.sbc.ranks import break_ties, param_names, rank_counts, thin
from vibench.sbc.records import SBC_SCHEMA, read_sbc, split_label, write_sbc
from vibench.sbc.run import run_sbc
from vibench.structure.conjugate import ConjugateGaussian

ALPHA = 0.05


# ------------------------------------------------------------------ helpers
@dataclass(frozen=True)
class NoConfig:
    """No settings."""


def choice_of(name: str, fit) -> MethodChoice:
    method = Method(
        name=name, version="0", Config=NoConfig, supports=lambda t: (True, ""), fit=fit,
        budget=lambda config, grad_evals: config,
    )
    return MethodChoice(method, NoConfig(), name)


def scale_task() -> Task:
    """sigma ~ HalfNormal(1), y_i ~ N(0, sigma²): one positive (constrained) site."""

    def model(data):
        sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
        numpyro.sample("y", dist.Normal(0.0, sigma).expand([5]).to_event(1), obs=data["y"])

    def simulate(key):
        key_sigma, key_y = jax.random.split(key)
        sigma = jnp.abs(jax.random.normal(key_sigma))
        return {"sigma": sigma}, {"y": sigma * jax.random.normal(key_y, (5,))}

    return Task(
        name="scale", label="scale", version="0", tags=frozenset(), model=model,
        data={"y": jnp.ones(5)}, reference=Reference(provenance="none"), simulate=simulate,
    )


def rejection_rate(pvalues: np.ndarray, alpha: float) -> tuple[float, float]:
    """Fraction of p-values ≤ alpha and 4 binomial standard errors of it under size alpha."""
    return float(np.mean(pvalues <= alpha)), 4 * math.sqrt(alpha * (1 - alpha) / pvalues.size)


# ------------------------------------------------------------------ ranks
def test_param_names_follow_sites_and_flat_order():
    names = param_names({"sigma": (), "beta": (2,), "z": (2, 2)})
    assert names == ("sigma", "beta[0]", "beta[1]", "z[0,0]", "z[0,1]", "z[1,0]", "z[1,1]")


def test_rank_counts_compare_constrained_draws_with_the_truth():
    logdensity = derive_logdensity(scale_task())
    z = jnp.log(jnp.array([[0.5], [1.0], [2.0], [3.0]]))  # sigma = exp(z) on the constrained scale
    less, equal, finite = rank_counts(logdensity, z, {"y": jnp.ones(5)}, {"sigma": jnp.asarray(2.5)})
    assert less.tolist() == [3] and equal.tolist() == [0] and bool(finite)
    one = {"sigma": jnp.asarray(1.0)}
    less, equal, _ = rank_counts(logdensity, z, {"y": jnp.ones(5)}, one)
    assert less.tolist() == [1] and equal.tolist() == [1]
    _, _, finite = rank_counts(logdensity, z.at[0, 0].set(jnp.nan), {"y": jnp.ones(5)}, one)
    assert not bool(finite)


def test_ties_are_broken_uniformly():
    # less = 2, equal = 3: the rank is uniform on {2, 3, 4, 5}; counts of 40000 draws are
    # within 4 binomial standard errors (sd = sqrt(n p (1 - p)) = 86.6) of 10000 each.
    n = 40_000
    ranks = break_ties(np.full(n, 2), np.full(n, 3), np.random.default_rng(0))
    counts = np.bincount(ranks, minlength=6)
    assert counts[:2].sum() == 0
    assert np.all(np.abs(counts[2:] - n / 4) < 4 * math.sqrt(n * 0.25 * 0.75))


def ar1_chains(key, mean, chol, phi: float, chains: int, n: int):
    """Stationary AR(1) chains with marginal N(mean, chol cholᵀ) and lag-1 correlation phi."""
    key_start, key_steps = jax.random.split(key)
    start = mean + jax.random.normal(key_start, (chains, mean.shape[0])) @ chol.T

    def step(z, eps):
        z = mean + phi * (z - mean) + math.sqrt(1 - phi**2) * eps @ chol.T
        return z, z

    _, draws = jax.lax.scan(step, start, jax.random.normal(key_steps, (n, chains, mean.shape[0])))
    return jnp.swapaxes(draws, 0, 1)


def test_thinning_keeps_about_ess_draws_and_refuses_to_invent_more():
    # AR(1) with phi = 0.9 has ESS ≈ N (1 - phi) / (1 + phi) = 4000 / 19 ≈ 210.
    draws = np.asarray(ar1_chains(jax.random.key(0), jnp.zeros(2), jnp.eye(2), 0.9, 2, 2000))
    kept = thin(draws, 100, np.random.default_rng(0))
    assert kept.shape == (100, 2)
    assert len({tuple(row) for row in kept}) == 100
    with pytest.raises(ValueError, match="effective sample size"):
        thin(draws, 1000, np.random.default_rng(0))


# ------------------------------------------------------------------ uniformity tests
def test_chi2_bins_keep_expected_counts_at_least_five():
    for replicates, draws in [(10, 99), (57, 20), (200, 99), (1000, 1023), (12, 1)]:
        bins = uniformity.chi2_bins(replicates, draws)
        sizes = np.array([b.size for b in bins])
        assert np.concatenate(bins).tolist() == list(range(draws + 1))
        assert sizes.max() - sizes.min() <= 1 and 2 <= len(bins) <= uniformity.MAX_BINS
        assert replicates * sizes.min() / (draws + 1) >= 5
    with pytest.raises(ValueError, match="at least 10"):
        uniformity.chi2_bins(9, 99)


def test_holm_adjustment():
    adjusted = uniformity.holm(np.array([0.01, 0.04, 0.03, 0.005]))
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, then running maximum
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_vsbc_statistic_is_the_ks_distance_between_p_and_one_minus_p():
    rng = np.random.default_rng(1)
    for draws in (7, 8):
        ranks = rng.integers(0, draws + 1, 60)
        p = ranks / draws
        grid = np.arange(draws + 1) / draws
        distance = np.abs((p <= grid[:, None] + 1e-9).mean(1) - (1 - p <= grid[:, None] + 1e-9).mean(1))
        assert uniformity.vsbc_statistic(ranks, draws) == round(60 * distance.max())


@pytest.mark.parametrize("draws", [19, 4])
def test_uniform_ranks_are_rejected_at_about_the_nominal_rate(draws: int):
    # 2000 uniform rank sets of 100 replicates: every test is valid (rate ≤ α + 4 se).
    # With L = 19 the statistics are fine-grained enough that the rate is also near α
    # (≥ α / 2: a test that never rejects fails); with L = 4 (coarse ranks) the exact
    # discrete tests may only be conservative.
    rng = np.random.default_rng(2)
    ranks = rng.integers(0, draws + 1, (100, 2000))
    pvalues = {
        "chi2": np.array([uniformity.chi2_pvalue(r, draws) for r in ranks.T]),
        "ecdf": uniformity.ecdf_pvalue(ranks, draws),
        "vsbc": np.array([uniformity.vsbc_pvalue(r, draws) for r in ranks.T]),
    }
    for name, p in pvalues.items():
        for alpha in (0.01, 0.05, 0.2):
            rate, margin = rejection_rate(p, alpha)
            assert rate <= alpha + margin, (name, alpha, rate)
            assert draws < 19 or rate >= alpha / 2, (name, alpha, rate)


def ranks_of(truth: np.ndarray, draws: np.ndarray) -> np.ndarray:
    return (draws < truth[:, None]).sum(axis=1)


def test_non_uniform_ranks_are_rejected():
    # θ ~ N(0, 1) with 99 draws from N(0, 0.5²) (under-dispersed: U-shaped ranks) or
    # N(1, 1) (biased by one sd: skewed ranks), 200 replicates. Both miscalibrations
    # are of order one, so the p-values are astronomically small (~1e-28 and below).
    rng = np.random.default_rng(3)
    truth = rng.normal(size=200)
    narrow = ranks_of(truth, rng.normal(0.0, 0.5, (200, 99)))
    biased = ranks_of(truth, rng.normal(1.0, 1.0, (200, 99)))
    for ranks in (narrow, biased):
        assert uniformity.chi2_pvalue(ranks, 99) < 1e-6
        assert uniformity.ecdf_pvalue(ranks[:, None], 99)[0] < 1e-6
    # VSBC tests symmetry only: a biased q is rejected, an unbiased narrow one is not
    # (its p is exactly symmetric, so its VSBC p-value is uniform; > 0.001 fails with
    # probability 0.001).
    assert uniformity.vsbc_pvalue(biased, 99) < 1e-6
    assert uniformity.vsbc_pvalue(narrow, 99) > 1e-3


# ------------------------------------------------------------------ the exact method
def test_exact_is_the_posterior_and_its_trace_the_log_evidence(registry):
    task = registry.task("linreg")
    choice = registry.method("exact")
    approx = choice.method.fit(task, logdensity_of(task), task.data, jax.random.key(0), choice.config)
    mean, cov = approx.gaussian()
    ref_mean, ref_cov = task.reference.gaussian
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-3, atol=1e-6)
    # float32: log p(x) ≈ -75 is exact to a few ulps of the terms it sums
    assert approx.trace.shape == (1,)
    assert abs(float(approx.trace[0]) - task.reference.log_evidence) < 1e-3
    assert int(approx.grad_evals) == 0 and approx.has_density
    assert registry.methods["exact"].supports(scale_task()) == (
        False, "needs an exactly Gaussian posterior (a ConjugateGaussian or BlockGaussian task extension)"
    )


# ------------------------------------------------------------------ SBC end to end
def test_sbc_of_exact_on_ppca_is_uniform(registry):
    outcome = run_sbc(registry.task("ppca"), registry.method("exact"))
    assert outcome.run["status"] == "ok"
    assert outcome.ranks.shape == (DEFAULT_REPLICATES, 200)
    assert outcome.ranks.min() >= 0 and outcome.ranks.max() <= DEFAULT_DRAWS
    assert not outcome.rejected, outcome.tests.nsmallest(5, "holm_pvalue")


def test_sbc_of_fullrank_advi_on_linreg_is_uniform(registry):
    outcome = run_sbc(registry.task("linreg"), registry.method("advi[family=fullrank]"))
    assert outcome.run["status"] == "ok"
    assert not outcome.rejected, outcome.tests


def test_sbc_of_meanfield_advi_on_linreg_is_rejected(registry):
    outcome = run_sbc(registry.task("linreg"), registry.method("advi"))
    assert outcome.rejected and outcome.pvalue < 1e-10
    assert outcome.tests["rejected"].all()
    # too narrow, not biased: U-shaped ranks pile up at both ends
    ranks = outcome.ranks
    assert np.mean((ranks == 0) | (ranks == DEFAULT_DRAWS)) > 0.3


def test_looped_and_chunked_runs_give_the_same_ranks(registry):
    # Replicate r's keys do not depend on how replicates are batched: fitting one at a
    # time and in compiled chunks of 7 (the last one padded) is the same SBC.
    task, choice = registry.task("linreg"), registry.method("exact")
    chunked = run_sbc(task, choice, replicates=20, chunk_size=7)
    looped = run_sbc(task, choice, replicates=20, vectorize=False)
    assert looped.run["status"] == "ok" and chunked.ranks.shape == (20, logdensity_of(task).dim)
    np.testing.assert_array_equal(chunked.ranks, looped.ranks)


def test_mcmc_draws_are_thinned_to_nearly_independent_ones(registry):
    # Exact AR(1) "MCMC" (phi = 0.9, ESS ≈ 210 of 4000) on linreg: the draws have the
    # right marginal, so after ESS thinning the ranks are uniform (rejected w.p. ≤ 5%).
    task = registry.task("linreg")
    conjugate = task.extension(ConjugateGaussian)

    def fit(task, logdensity, data, key, config):
        mean, cov = conjugate.posterior(data)
        draws = ar1_chains(key, mean, jnp.linalg.cholesky(cov), 0.9, 2, 2000)
        return Approximation({"draws": draws}, jnp.zeros(1), jnp.asarray(0), Draws(kind="mcmc"))

    outcome = run_sbc(task, choice_of("ar1", fit), replicates=50, draws=49)
    assert outcome.run["status"] == "ok" and not outcome.rejected, outcome.tests


@pytest.mark.slow
def test_sbc_of_nuts_on_linreg_is_uniform(registry):
    # NUTS (4 vmapped chains per replicate, vmapped over replicates), ESS-thinned:
    # a correct sampler, so rejected with probability ≤ 5%. ~40 s on 2 CPU cores.
    outcome = run_sbc(registry.task("linreg"), registry.method("nuts"), replicates=50, draws=49)
    assert outcome.run["status"] == "ok" and not outcome.rejected, outcome.tests


def test_failed_and_non_finite_runs_are_results(registry):
    task = registry.task("linreg")

    def random_walk(task, logdensity, data, key, config):
        draws = jnp.cumsum(jax.random.normal(key, (2, 300, logdensity.dim)), axis=1)
        return Approximation({"draws": draws}, jnp.zeros(1), jnp.asarray(0), Draws(kind="mcmc"))

    def nan_fit(task, logdensity, data, key, config):
        params = {"loc": jnp.full(logdensity.dim, jnp.nan), "log_scale": jnp.zeros(logdensity.dim)}
        return Approximation(params, jnp.zeros(1), jnp.asarray(0), MeanField())

    failed = run_sbc(task, choice_of("walk", random_walk), replicates=10)
    assert failed.run["status"] == "failed" and "effective sample size" in failed.run["error"]
    assert {row["kind"] for row in failed.rows} == {"sbc"}  # not a failed benchmark run
    assert [row["metric"] for row in failed.rows] == ["run"] and failed.ranks.size == 0
    nan = run_sbc(task, choice_of("nan", nan_fit), replicates=10)
    assert nan.run["status"] == "nan" and nan.ranks.size == 0
    assert {row["metric"] for row in nan.rows} >= {"sbc_time_fit_s", "sbc_replicates"}


# ------------------------------------------------------------------ results, plots, CLI
def test_results_ranks_and_plots_are_written(registry, tmp_path: Path):
    outcome = run_sbc(registry.task("linreg"), registry.method("exact"), replicates=20, draws=9, seed=3)
    ranks_file = write_sbc(tmp_path, outcome)
    plots = save_plots(tmp_path, outcome)
    table = read_sbc(tmp_path)
    n_par = len(outcome.params)
    assert ranks_file.parent == tmp_path / "_sbc" and len(table) == 20 * n_par
    assert list(table.columns) == SBC_SCHEMA.names
    assert set(table["n_draws"]) == {9} and set(table["run_id"]) == {outcome.run["run_id"]}
    np.testing.assert_array_equal(
        table.pivot(index="replicate", columns="param", values="rank").to_numpy(), outcome.ranks
    )
    metrics = read_metrics(tmp_path)  # skips _sbc/ and its _plots/
    assert set(metrics["kind"]) == {"sbc"}
    assert len(metrics) == len(outcome.rows) == 9 + 3 * n_par
    per_param = metrics[metrics["label"].str.contains("::", regex=False)]
    params = {split_label(label) for label in per_param["label"]}
    assert params == {("exact", f"beta[{i}]") for i in range(n_par)}
    assert set(per_param["metric"]) == {"sbc_chi2_pvalue", "sbc_ecdf_pvalue", "vsbc_pvalue"}
    verdict = metrics.set_index(["label", "metric"])["value"]
    assert verdict[("exact", "sbc_pvalue")] == pytest.approx(outcome.pvalue)
    assert verdict[("exact", "sbc_rejected")] == float(outcome.rejected)
    assert [p.suffix for p in plots] == [".png", ".png"] and all(p.stat().st_size > 0 for p in plots)
    assert isinstance(rank_histogram_figure(outcome), Figure)
    assert isinstance(ecdf_difference_figure(outcome), Figure)


def test_cli_sbc(registry, tmp_path: Path, capsys):
    args = ["sbc", "--task", "linreg", "--method", "exact", "--replicates", "20", "--draws", "9"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "beta[0]" in printed and "verdict:" in printed
    assert len(read_sbc(tmp_path)) == 20 * logdensity_of(registry.task("linreg")).dim
    for bad, message in [
        (["--method", "nope"], "unknown method 'nope'"),
        (["--replicates", "5"], "--replicates must be between 10 and 10000"),
        (["--task", "funnel"], "does not support task funnel"),
    ]:
        argv = args + bad if bad[0] != "--task" else ["sbc", "--task", "funnel", "--method", "exact"]
        assert main([*argv, "--out", str(tmp_path)]) == 2
        assert message in capsys.readouterr().err
