"""Held-out prediction: test_lpd against linreg's closed-form predictive, a stable
log-mean-exp, RMSE and accuracy against hand computations, chunking, and the CLI.

Tolerances: the exact posterior's test_lpd is compared with the closed form within
4 Monte Carlo standard errors over draws after removing the log-mean-exp's O(1/S)
bias (both by the delta method, derived in the test); hand computations agree to
float32 rounding. Every seed is fixed.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
from synthetic import draws, task_of

from vibench.cli import main
from vibench.declarations import resolve
from vibench.logdensity import derive_logdensity
from vibench.metrics import predictive as metrics
from vibench.metrics.evaluation import Evaluation, evaluate
from vibench.registry import discover
from vibench.structure.conjugate import gaussian_reference
from vibench.structure.predictive import Predictive

REGISTRY = discover()


def exact_evaluation(task, n_draws: int, seed: int = 0) -> Evaluation:
    """An evaluation of the exact posterior (method ``exact``) on ``task``."""
    exact = REGISTRY.methods["exact"]
    logdensity = derive_logdensity(task)
    approx = resolve(exact.fit)(task, logdensity, task.data, jax.random.key(seed), exact.Config())
    return Evaluation(task, logdensity, approx, jax.random.key(seed + 1), n_draws)


# ----------------------------------------------------------------------- linreg
def test_exact_posterior_test_lpd_matches_closed_form():
    task = REGISTRY.task("linreg")
    ev = exact_evaluation(task, n_draws=2048)
    predictive = task.extension(Predictive)
    estimate = metrics.test_lpd(ev)
    exact = metrics.test_lpd_exact(ev)
    # Monte Carlo error over the S draws, by the delta method: with r_si = p(y_i|z_s) / p̂_i,
    # test_lpd − its limit ≈ (1/S) Σ_s (w_s − 1), w_s = mean_i r_si, so se = sd(w)/√S;
    # and E[log p̂_i] − log p_i ≈ −Var(r_i)/(2S): the bias of the log of a mean.
    log_lik = metrics.pointwise_predictions(predictive, ev.draws.values[0], task.held_out).log_lik
    ratios = np.exp(log_lik - metrics.log_mean_exp(log_lik, axis=0))
    n_draws = log_lik.shape[0]
    mc_se = np.std(ratios.mean(axis=1), ddof=1) / math.sqrt(n_draws)
    bias = -np.mean(np.var(ratios, axis=0, ddof=1)) / (2 * n_draws)
    assert 0 < mc_se < 0.05
    assert abs(estimate.value - bias - exact.value) < 4 * mc_se
    # the standard error over test points is the same kind of number for both
    assert estimate.stderr == pytest.approx(exact.stderr, rel=0.05)
    assert estimate.stderr == pytest.approx(np.std(metrics.log_mean_exp(log_lik)) / 10, rel=0.01)


def test_exact_lpd_is_the_gaussian_predictive():
    task = REGISTRY.task("linreg")
    mean, cov = (np.asarray(a, np.float64) for a in task.reference.gaussian)
    x, y = (np.asarray(task.held_out[k], np.float64) for k in ("x", "y"))
    var = 1.0 + np.sum((x @ cov) * x, axis=1)  # sigma = 1
    expected = -0.5 * (np.log(2 * np.pi * var) + (y - x @ mean) ** 2 / var)
    got = np.asarray(task.extension(Predictive).exact_lpd(task.held_out))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_test_split_leaves_training_data_alone():
    default, small = REGISTRY.task("linreg"), REGISTRY.task("linreg[n_test=7]")
    np.testing.assert_array_equal(default.data["y"], small.data["y"])
    assert default.reference.log_evidence == small.reference.log_evidence
    assert small.held_out["x"].shape == (7, 6) and small.held_out["y"].shape == (7,)
    # test targets are not copies of training ones
    assert not np.isin(np.asarray(default.held_out["y"]), np.asarray(default.data["y"])).any()
    with pytest.raises(ValueError, match="n_test"):
        REGISTRY.task("linreg[n_test=0]")


# ----------------------------------------------------------------------- synthetic
def synthetic_task(predictive: Predictive, held_out: dict):
    def model(data):
        numpyro.sample("z", dist.Normal(0.0, 1.0).expand([2]).to_event(1))

    reference = gaussian_reference(jnp.zeros(2), jnp.eye(2), 0.0, "closed form")
    return dataclasses.replace(task_of(model, reference, extensions=(predictive,)), held_out=held_out)


def test_log_mean_exp_is_stable_far_below_underflow():
    offsets = np.linspace(0.0, 3.0, 64)
    values = -1e4 + offsets
    with np.errstate(divide="ignore"):
        assert np.log(np.mean(np.exp(values))) == -np.inf  # the naive formula underflows
    expected = -1e4 + np.log(np.mean(np.exp(offsets)))
    assert metrics.log_mean_exp(values) == pytest.approx(expected, abs=1e-9)
    assert metrics.log_mean_exp(-values) == pytest.approx(1e4 + np.log(np.mean(np.exp(-offsets))), abs=1e-9)


def test_test_lpd_stable_through_the_metric():
    # log p(y_i | z) = c_i + z_0: lpd_i = c_i + log mean_s exp(z_s0), with c_i near −1e4
    c = np.array([-1.0e4, -1.2e4, -0.9e4], np.float32)
    z = np.stack([np.linspace(-2.0, 2.0, 40), np.zeros(40)], axis=1)
    predictive = Predictive(lambda z, h: h["c"] + z[0], target="c")
    task = synthetic_task(predictive, {"c": jnp.asarray(c)})
    ev = Evaluation(task, derive_logdensity(task), draws(z[None], "iid"), jax.random.key(0), 40)
    expected = np.mean(c.astype(np.float64)) + np.log(np.mean(np.exp(z[:, 0])))
    assert metrics.test_lpd(ev).value == pytest.approx(expected, abs=2e-3)  # float32 rounding of c + z


def regression_and_classification(monkeypatch, chunk_scalars: int | None):
    """RMSE and accuracy on 2-d draws with hand-computed answers; ``chunk_scalars`` forces
    several chunks of draws (and a padded last one)."""
    if chunk_scalars is not None:
        monkeypatch.setattr(metrics, "CHUNK_SCALARS", chunk_scalars)
    rng = np.random.default_rng(3)
    z = rng.normal(size=(10, 2)).astype(np.float32)
    x = rng.normal(size=(5, 2)).astype(np.float32)
    y = rng.normal(size=5).astype(np.float32)
    labels = np.array([0, 1, 1, 0, 1])

    def regression_mean(z, h):
        return h["x"] @ z

    def log_lik(z, h):
        return -0.5 * (h["y"] - h["x"] @ z) ** 2 - 0.5 * math.log(2 * math.pi)

    def class_probs(z, h):
        p = jax.nn.sigmoid(h["x"] @ z)
        return jnp.stack([1 - p, p], axis=-1)

    def class_log_lik(z, h):
        return jnp.log(jnp.take_along_axis(class_probs(z, h), h["label"][:, None], axis=1)[:, 0])

    held_out = {"x": jnp.asarray(x), "y": jnp.asarray(y), "label": jnp.asarray(labels)}
    approx = draws(z[None], "iid")
    results = {}
    for kind, mean, ll, target in (
        ("regression", regression_mean, log_lik, "y"),
        ("classification", class_probs, class_log_lik, "label"),
    ):
        task = synthetic_task(Predictive(ll, target=target, kind=kind, mean=mean), held_out)
        results[kind] = evaluate(task, derive_logdensity(task), approx, jax.random.key(0), 10)
    pred = (x.astype(np.float64) @ z.T.astype(np.float64)).mean(axis=1)
    squared = (pred - y) ** 2
    rmse = np.sqrt(squared.mean())
    p1 = (1 / (1 + np.exp(-(x.astype(np.float64) @ z.T.astype(np.float64))))).mean(axis=1)
    correct = ((p1 > 0.5).astype(int) == labels).astype(np.float64)
    lpd = np.log(np.mean(np.exp(-0.5 * (y[:, None] - x @ z.T) ** 2), axis=1)) - 0.5 * math.log(2 * math.pi)
    return results, rmse, np.std(squared, ddof=1) / math.sqrt(5) / (2 * rmse), correct, lpd


@pytest.mark.parametrize("chunk_scalars", [None, 20])  # 20: chunks of 2 draws (10 numbers per draw)
def test_rmse_and_accuracy_against_hand_computation(monkeypatch, chunk_scalars):
    results, rmse, rmse_se, correct, lpd = regression_and_classification(monkeypatch, chunk_scalars)
    regression, classification = results["regression"], results["classification"]
    assert regression["test_rmse"].value == pytest.approx(rmse, rel=1e-5)
    assert regression["test_rmse"].stderr == pytest.approx(rmse_se, rel=1e-4)
    assert regression["test_lpd"].value == pytest.approx(lpd.mean(), rel=1e-5)
    assert regression["test_lpd"].stderr == pytest.approx(np.std(lpd, ddof=1) / math.sqrt(5), rel=1e-4)
    assert "test_accuracy" not in regression and "test_lpd_exact" not in regression
    assert classification["test_accuracy"].value == pytest.approx(correct.mean())
    assert classification["test_accuracy"].stderr == pytest.approx(np.std(correct, ddof=1) / math.sqrt(5))
    assert "test_rmse" not in classification


def test_chunks_of_draws_bound_their_size():
    assert metrics.chunk_size(4096, 100) == min(4096, metrics.CHUNK_SCALARS // 100)
    assert metrics.chunk_size(4096, 10**9) == 1
    assert metrics.chunk_size(3, 1) == 3


def test_no_predictive_metrics_without_test_data():
    # gaussian has no held-out data: the metrics are absent, not made up
    task = REGISTRY.task("gaussian")
    ev = exact_evaluation(task, n_draws=64)
    assert not metrics.applies_lpd(ev) and not metrics.applies_rmse(ev)


def test_predictive_needs_kind_and_mean_together():
    with pytest.raises(ValueError, match="kind and mean together"):
        Predictive(lambda z, h: z, target="y", kind="regression")
    with pytest.raises(ValueError, match="'regression' or 'classification'"):
        Predictive(lambda z, h: z, target="y", kind="ordinal", mean=lambda z, h: z)


# ----------------------------------------------------------------------- CLI
def test_run_writes_test_lpd_and_the_table_shows_it(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", "--task", "linreg", "--method", "advi", "--draws", "512", "--out", str(out)]) == 0
    rows = pd.read_parquet(out).set_index("metric")
    assert rows.loc["test_lpd", "status"] == "ok"
    lpd, exact = rows.loc["test_lpd"], rows.loc["test_lpd_exact"]
    assert np.isfinite(lpd["value"]) and lpd["stderr"] > 0
    # ADVI's mean-field q is under-dispersed but centred: its test_lpd is near the exact one
    assert abs(lpd["value"] - exact["value"]) < 0.1
    assert np.isfinite(rows.loc["test_rmse", "value"])
    capsys.readouterr()
    assert main(["table", str(out), "--format", "markdown", "--metric", "test_lpd"]) == 0
    table = capsys.readouterr().out
    assert "| linreg |" in table and f"{lpd['value']:.2f}"[:4] in table
