"""Binarized MNIST and the deep-generative-model method ``vae`` (JAX and PyTorch backends).

The unit tests use a small synthetic binary set: images from 4 random 16-pixel prototypes,
each pixel flipped with probability 0.1 (a mixture whose best log-likelihood is about
−16·H(0.1) − log 4 ≈ −6.6 nats per image; independent pixels of mean ≈ 0.5 give ≈ −11).

Estimator checks, on a 2-pixel, 1-latent decoder whose log p(x) is computed exactly by
Gauss–Hermite quadrature (100 nodes; the integrand is smooth, so to ~1e-10): q is wider
than the prior (sd 1.3), so every weight p(x, z)/q(z) ≤ N(z; 0, 1)/q(z) is bounded and the
delta-method standard error sd(w)/(√K mean(w)) of log p̂ is valid. log p̂ at K = 5000 must
lie within Z = 4 of its standard errors of the exact value (consistency), and the mean
over R = 400 independent estimates p̂ at K = 10 within Z of its standard errors of the
exact p(x) (unbiasedness in p, where log p̂ at K = 10 is visibly biased low).

Amortization gap: per-image Gaussians fitted to a trained decoder must not lose to the
encoder (gap ≥ −Z se), must gain much over a re-initialized encoder, and on the tiny
model must not exceed the exact log p(x) (an ELBO is a lower bound) beyond Z se.
"""

from __future__ import annotations

import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SHARED_DATA
from numpy.polynomial.hermite_e import hermegauss

from vibench.cli import main
from vibench.data import files
from vibench.data import mnist as mnist_data
from vibench.families.generative import (
    Architecture,
    encode,
    glorot_layers,
    init_params,
    mlp,
)
from vibench.harness.runner import run_pair
from vibench.harness.store import read_metrics
from vibench.methods import _vae
from vibench.methods.vae import TORCH_HINT, VAEConfig
from vibench.metrics.generative import (
    active_units,
    amortization_gaps,
    fit_local_gaussians,
    gaussian_log_weights,
    image_log_weights,
    score_images,
)
from vibench.spec import SpecError
from vibench.tasks._mnist import generative_task

Z = 4.0
PIXELS = 16
SMALL = "latents=2,hidden=16,layers=1,batch_size=20,schedule=constant,lr=0.01,epochs=15"


def synthetic(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(123).random((4, PIXELS)) < 0.5
    grey = np.where(prototypes[rng.integers(0, 4, n)], 0.9, 0.1)
    return (rng.random((n, PIXELS)) < grey).astype(np.uint8)


@pytest.fixture(scope="module")
def task():
    return generative_task("synthetic", "synthetic", synthetic(400, 0), synthetic(100, 1),
                           Architecture(PIXELS, 2, (16,)), eval_k=500)


def independent_pixels(train: np.ndarray, test: np.ndarray) -> float:
    """Mean test log-likelihood of independent Bernoulli pixels fitted to ``train``."""
    p = np.clip(train.mean(0), 1e-3, 1 - 1e-3)
    return float(np.mean(test @ np.log(p) + (1 - test) @ np.log1p(-p)))


# ----------------------------------------------------------------------- data
def test_missing_file_is_one_line_naming_file_and_roots(tmp_path, monkeypatch):
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path / "env"))
    monkeypatch.setattr(files, "CACHE", tmp_path / "cache")
    with pytest.raises(files.DataFileError) as err:
        mnist_data.load("test", tmp_path / "given")
    text = str(err.value)
    assert "\n" not in text and "binarized_mnist/binarized_mnist_test.amat" in text
    assert all(str(tmp_path / d) in text for d in ("given", "env", "cache"))


def test_altered_file_is_refused_not_read(tmp_path, monkeypatch):
    monkeypatch.delenv(files.ENV_VAR, raising=False)
    (tmp_path / "binarized_mnist").mkdir()
    (tmp_path / "binarized_mnist" / "binarized_mnist_test.amat").write_bytes(b"not the file")
    with pytest.raises(files.DataFileError, match="altered") as err:
        mnist_data.load("test", tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="valid: train, valid, test"):
        mnist_data.load("training", tmp_path)


@pytest.mark.skipif(not (SHARED_DATA / "binarized_mnist").is_dir(), reason="no local MNIST copy")
def test_real_test_file_loads_verified():
    images = mnist_data.load("test", SHARED_DATA)
    assert images.shape == (10_000, 784) and set(np.unique(images)) == {0, 1}


def test_dynamic_binarization_is_refused_saying_why(registry):
    with pytest.raises(SpecError, match="grey levels"):
        registry.task("mnist[binarization=dynamic]")


# ----------------------------------------------------------------------- estimator
def tiny_params(seed: int = 0):
    """A 2-pixel decoder with one latent; q(z | x) = N(0.1, 1.3²) for every x."""
    key = jax.random.key(seed)
    encoder = glorot_layers(key, [2, 3, 2])
    encoder[-1] = {"w": jnp.zeros((3, 2)), "b": jnp.array([0.1, math.log(1.3)])}
    decoder = [{"w": jnp.array([[2.0, -1.5, 0.7]]), "b": jnp.array([0.3, -0.2, 0.1])},
               {"w": jnp.array([[1.5, -2.0], [-1.0, 1.0], [0.5, 2.5]]), "b": jnp.array([0.2, -0.4])}]
    return {"encoder": encoder, "decoder": decoder}


def exact_log_px(params, x: np.ndarray) -> np.ndarray:
    """log ∫ N(z; 0, 1) p(x | z) dz by 100-node Gauss–Hermite quadrature (probabilists')."""
    nodes, weights = hermegauss(100)
    logits = np.asarray(mlp(params["decoder"], jnp.asarray(nodes[:, None], jnp.float32)), np.float64)
    log_lik = x @ logits.T - np.logaddexp(0, logits).sum(1)  # (images, nodes)
    return np.log(np.exp(log_lik) @ weights / math.sqrt(2 * math.pi))


PATTERNS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)


def test_log_px_at_k5000_is_consistent_with_quadrature():
    params = tiny_params()
    exact = exact_log_px(params, PATTERNS)
    assert abs(np.logaddexp.reduce(exact)) < 1e-6  # the four patterns' probabilities sum to 1
    log_w = np.asarray(image_log_weights(params, jnp.asarray(PATTERNS), jax.random.key(1), 5000, 1000), np.float64)
    w = np.exp(log_w - log_w.max(1, keepdims=True))
    estimate = np.log(w.mean(1)) + log_w.max(1)
    se = w.std(1, ddof=1) / (math.sqrt(5000) * w.mean(1))
    assert np.all(np.abs(estimate - exact) <= Z * se), (estimate, exact, se)
    scores = score_images(params, Architecture(2, 1, (3,)), PATTERNS, jax.random.key(1), 5000, 2**20)
    assert np.all(np.abs(scores.log_px - exact) <= Z * se)  # chunked draws: other noise, same error
    assert np.all(scores.log_px >= scores.elbo)  # Jensen, per image, for the same draws


def test_px_estimate_is_unbiased_at_small_k():
    params = tiny_params()
    p = np.exp(exact_log_px(params, PATTERNS))
    log_w = np.asarray(image_log_weights(params, jnp.asarray(PATTERNS), jax.random.key(2), 4000, 4000), np.float64)
    p_hat = np.exp(log_w).reshape(4, 400, 10).mean(2)  # R = 400 estimates at K = 10
    se = p_hat.std(1, ddof=1) / math.sqrt(400)
    assert np.all(np.abs(p_hat.mean(1) - p) <= Z * se), (p_hat.mean(1), p, se)


def test_dreg_gradient_has_the_expectation_of_the_standard_one():
    """E[DReG] = E[∇ IWAE bound] for encoder and decoder (Tucker et al. 2019), K = 5."""
    params = tiny_params()
    x = jnp.asarray(PATTERNS)
    eps = jax.random.normal(jax.random.key(3), (4000, 5, 4, 1))
    grads = {d: jax.vmap(lambda e, d=d: _vae.bound_and_grad(params, x, e, "iwae", d)[1])(eps) for d in (False, True)}
    for part in ("encoder", "decoder"):
        for a, b in zip(jax.tree.leaves(grads[False][part]), jax.tree.leaves(grads[True][part])):
            a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
            se = np.sqrt(a.var(0) / len(a) + b.var(0) / len(b))
            assert np.all(np.abs(a.mean(0) - b.mean(0)) <= Z * se + 1e-6)


def test_active_units_counts_varying_means():
    means = np.stack([np.linspace(-1, 1, 100), np.full(100, 0.3), 0.05 * np.linspace(-1, 1, 100)], axis=1)
    assert active_units(means) == 1


def test_burda_schedule():
    rates = _vae.learning_rates(VAEConfig(epochs=3280))
    stages = [len(list(group)) for _, group in __import__("itertools").groupby(rates)]
    assert stages == [3**i for i in range(8)]
    assert np.allclose(np.unique(rates)[::-1], 1e-3 * 10.0 ** (-np.arange(8) / 7))


# ----------------------------------------------------------------------- amortization gap
def _se(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / math.sqrt(values.size))


def test_amortization_gap_is_nonnegative_and_large_for_a_bad_encoder(task):
    config = VAEConfig(latents=2, hidden=16, layers=1, batch_size=20, schedule="constant", lr=0.01, epochs=15)
    params = _vae.fit(task, None, task.data, jax.random.key(0), config).params
    arch, images = Architecture(PIXELS, 2, (16,)), task.held_out["x"]
    gaps = amortization_gaps(params, arch, images, jax.random.key(1), 2**26)
    assert gaps.mean() >= -Z * _se(gaps), gaps.mean()
    bad = {**params, "encoder": init_params(arch, jax.random.key(5), jnp.full(PIXELS, 0.5))["encoder"]}
    bad_gaps = amortization_gaps(bad, arch, images, jax.random.key(1), 2**26)
    assert bad_gaps.mean() - gaps.mean() > max(1.0, Z * math.sqrt(_se(gaps) ** 2 + _se(bad_gaps) ** 2))


def test_per_image_gaussian_elbo_stays_below_exact_log_px():
    params = tiny_params()
    x = jnp.asarray(PATTERNS)
    exact = exact_log_px(params, PATTERNS)
    amortized = encode(params, x)
    local = fit_local_gaussians(params["decoder"], x, *amortized, jax.random.key(4), 300, 4, 1e-2)
    eps = jax.random.normal(jax.random.key(6), (5000, 4, 1))
    for q in (amortized, local):
        log_w = np.asarray(gaussian_log_weights(params["decoder"], x, *q, eps), np.float64)
        elbo, se = log_w.mean(0), log_w.std(0, ddof=1) / math.sqrt(5000)
        assert np.all(elbo <= exact + Z * se), (elbo, exact, se)
    reference = np.asarray(gaussian_log_weights(params["decoder"], x, *amortized, eps), np.float64)
    assert np.all(log_w.mean(0) > reference.mean(0))  # same draws: the fit improved every image


# ----------------------------------------------------------------------- method through the harness
def test_vae_through_the_harness_reports_test_metrics(registry, task):
    choice = registry.method(f"vae[{SMALL}]")
    outcome = run_pair(task, choice, [0], jax.devices("cpu")[0])[0]
    values = {row["metric"]: (row["value"], row["stderr"]) for row in outcome.rows}
    assert {row["status"] for row in outcome.rows} == {"ok"}
    assert {"test_log_px", "test_elbo", "test_khat", "active_units", "time_compile_s", "epoch_time_s",
            "test_amortization_gap"} <= set(values)
    gap, gap_se = values["test_amortization_gap"]
    assert gap >= -Z * gap_se and gap_se > 0
    assert not {"elbo", "log_px_is", "khat"} & set(values)  # no posterior metrics of a fixed target
    log_px, se = values["test_log_px"]
    assert 0 < se < 1 and values["test_elbo"][0] <= log_px
    baseline = independent_pixels(np.asarray(task.data["x"]), np.asarray(task.held_out["x"]))
    assert log_px > baseline + 2.0, (log_px, baseline)  # it learned the prototypes' structure
    ok, _ = choice.method.supports(registry.task("ppca"))
    assert not ok


def test_supports_only_deep_generative_tasks(registry, task):
    vae = registry.method("vae").method
    assert vae.supports(task) == (True, "")
    ok, reason = vae.supports(registry.task("ppca"))
    assert not ok and "DeepGenerative" in reason


# ----------------------------------------------------------------------- backends
def _test_log_px(task, config: VAEConfig, seed: int) -> float:
    approx = _vae.fit(task, None, task.data, jax.random.key(seed), config)
    scores = score_images(approx.params, approx.family.arch, task.held_out["x"], jax.random.key(99), 500, 2**26)
    return float(scores.log_px.mean())


def test_jax_and_torch_agree_within_noise_over_seeds(task):
    """Same architecture, init scheme, optimizer, schedule, data order and budget: the mean
    test log p(x) over 4 seeds agrees within Z standard errors of the difference."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: one thread, no spinning against a shared CPU
    try:
        _agree(task)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "binarized_mnist").is_dir(), reason="no local MNIST copy")
def test_jax_and_torch_agree_on_mnist(registry):
    """The same agreement on real MNIST (1 000 training images, 200 test images), Burda
    et al.'s architecture, 3 epochs per seed."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _agree(registry.task("mnist[subset=1000,n_test=200]"), VAEConfig(epochs=3))
    finally:
        torch.set_num_threads(threads)


def _agree(task, config: VAEConfig | None = None) -> None:
    if config is None:
        config = VAEConfig(latents=2, hidden=16, layers=1, batch_size=50, schedule="constant", lr=0.01, epochs=20)
    seeds = range(4)
    jax_values = np.array([_test_log_px(task, config, s) for s in seeds])
    torch_values = np.array([_test_log_px(task, VAEConfig(**{**config.__dict__, "backend": "torch"}), s) for s in seeds])
    se = math.sqrt(jax_values.var(ddof=1) / 4 + torch_values.var(ddof=1) / 4)
    assert abs(jax_values.mean() - torch_values.mean()) <= Z * max(se, 0.02), (jax_values, torch_values)
    baseline = independent_pixels(np.asarray(task.data["x"]), np.asarray(task.held_out["x"]))
    assert min(jax_values.min(), torch_values.min()) > baseline + 2.0


def test_without_torch_the_torch_backend_is_refused_with_the_hint(registry, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails, as when it is missing
    with pytest.raises(SpecError) as err:
        registry.method("vae[backend=torch]")
    assert TORCH_HINT in str(err.value) and "\n" not in str(err.value)
    assert registry.method("vae[k=5,objective=iwae]").label == "vae[k=5,objective=iwae]"
    monkeypatch.delitem(sys.modules, "vibench.methods._vae_torch", raising=False)
    with pytest.raises(ImportError):
        __import__("vibench.methods._vae_torch")


# ----------------------------------------------------------------------- IWAE against VAE (slow)
def paired_difference(table, metric: str, label_a: str, label_b: str) -> tuple[float, float, int]:
    """Mean over seeds of ``metric``(b) − ``metric``(a), its standard error, the seeds."""
    rows = table[table["metric"] == metric].pivot_table(index="seed", columns="label", values="value")
    diff = (rows[label_b] - rows[label_a]).dropna().to_numpy()
    return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(diff.size)), diff.size


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "binarized_mnist").is_dir(), reason="no local MNIST copy")
def test_iwae_beats_vae_at_equal_epochs_paired_over_seeds(tmp_path):
    """A small version of issue 15's comparison: 2 000 training images, 5 epochs, 4 seeds,
    200 test images at K = 1000; IWAE (k = 5) above the VAE by more than Z paired se."""
    vae, iwae = "vae[epochs=5]", "vae[k=5,objective=iwae,epochs=5]"  # as their labels are written
    code = main(["run", "--task", "mnist[eval_k=1000,n_test=200,subset=2000]", "--method", vae, "--method", iwae,
                 "--seeds", "4", "--out", str(tmp_path)])
    assert code == 0
    table = read_metrics(tmp_path)
    assert set(table["label"]) == {vae, iwae}
    mean, se, seeds = paired_difference(table, "test_log_px", vae, iwae)
    assert seeds == 4 and mean > Z * se, (mean, se)
