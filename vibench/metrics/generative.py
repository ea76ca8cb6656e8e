"""Held-out metrics of a fitted deep generative model (a VAE's or IWAE's decoder and
encoder) on its task's test images (:class:`vibench.structure.generative.DeepGenerative`).

Per test image x, K = ``eval_k`` (5000 by default) draws z_k ~ q(z | x) give log weights
log w_k = log p(x | z_k) + log p(z_k) − log q(z_k | x) (:func:`image_log_weights`):

- test log p(x): log (1/K) Σ_k w_k, whose exponential is an unbiased estimate of p(x)
  and which is consistent for log p(x) (biased low by about Var(w)/(2K p(x)²));
- test ELBO: (1/K) Σ_k log w_k, unbiased for the ELBO of q(z | x);
- k-hat: the PSIS Pareto shape of each image's K weights (ArviZ), summarized by its
  mean over images and the fraction of images above 0.7 (where the IS estimate of
  p(x) is unreliable);
- active units (Burda et al. 2016): latent u is active if Cov_x(E_{q(u|x)}[u]) > 10⁻²
  over the test images (for a Gaussian q, E_q[u] is the encoder's mean);
- amortization gap (Cremer, Li & Duvenaud 2018): on the first :data:`GAP_IMAGES` test
  images (a random subset: the task's test images are in random order), the ELBO of a
  Gaussian N(m, diag s²) fitted to each image alone (:data:`GAP_STEPS` Adam steps from
  the encoder's output, :data:`GAP_DRAWS` reparameterized draws a step, all images in
  one batch) minus the encoder's ELBO, both estimated with the same
  :data:`GAP_EVAL_DRAWS` noise draws per image (common random numbers, so the paired
  difference is precise). Positive up to Monte Carlo error where the per-image fit
  improves on the encoder; it bounds the true gap from below (a local optimum, a finite
  number of steps).

Each is averaged over the test images; its standard error is the sd over images / √n
(it includes the Monte Carlo noise of each image's estimate). The log weights are
computed in chunks of images and of draws, jitted once per chunk shape, so memory is
bounded by :data:`vibench.metrics.evaluation.MEMORY_BUDGET` whatever K and n.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache, partial
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.special import logsumexp

from vibench.families.generative import (
    Architecture,
    DeepGenerativeFamily,
    Params,
    bernoulli_log_likelihood,
    encode,
    log_weights,
    mlp,
)
from vibench.metrics.estimates import Estimate
from vibench.numerics.arviz import az
from vibench.structure.generative import DeepGenerative

if TYPE_CHECKING:
    from vibench.metrics.evaluation import Evaluation

IMAGE_CHUNK = 50
ACTIVE_UNIT_THRESHOLD = 1e-2
UNRELIABLE_KHAT = 0.7
BYTES_PER_DRAW_FLOATS = 3
"""Working floats per (image, draw) and activation: the forward pass's values plus two
temporaries (no gradients are taken)."""
GAP_IMAGES, GAP_STEPS, GAP_DRAWS, GAP_LR, GAP_EVAL_DRAWS = 200, 300, 4, 1e-2, 500
"""Amortization gap: test images, Adam steps, draws per step, learning rate, and the
evaluation draws per image (see the module doc)."""
GAP_STREAM = 7
"""Stream of the evaluation key the amortization gap draws from (apart from the scores')."""
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def draws_per_chunk(arch: Architecture, images: int, k: int, budget: int) -> int:
    """Draws per chunk so that ``images`` images' decoder activations fit in ``budget`` bytes."""
    floats = arch.pixels + 2 * sum(arch.hidden) + 4 * arch.latents
    return max(1, min(k, budget // (images * floats * 4 * BYTES_PER_DRAW_FLOATS)))


@partial(jax.jit, static_argnames=("k", "chunk"))
def image_log_weights(params: Params, x: jax.Array, key: jax.Array, k: int, chunk: int) -> jax.Array:
    """(B, K) log weights of images x (B, pixels), K draws from q(z | x) each, evaluated
    ``chunk`` draws at a time (the draws past K of the last chunk are discarded)."""
    latents = params["encoder"][-1]["b"].shape[0] // 2
    n_chunks = -(-k // chunk)

    def one(j):
        eps = jax.random.normal(jax.random.fold_in(key, j), (chunk, x.shape[0], latents), x.dtype)
        return log_weights(params, x, eps)

    log_w = jax.lax.map(one, jnp.arange(n_chunks))  # (n_chunks, chunk, B)
    return log_w.reshape(n_chunks * chunk, x.shape[0])[:k].T


class Scores(NamedTuple):
    """Per test image: the log p(x) estimate, the ELBO estimate and k-hat; the encoder's
    means (n, latents)."""

    log_px: np.ndarray
    elbo: np.ndarray
    khat: np.ndarray
    means: np.ndarray


def score_images(params: Params, arch: Architecture, images, key, k: int, budget: int) -> Scores:
    """:class:`Scores` of ``images`` (n, pixels) with ``k`` draws per image."""
    images = jnp.asarray(images, jnp.float32)
    n = images.shape[0]
    size = min(n, IMAGE_CHUNK)
    chunk = draws_per_chunk(arch, size, k, budget)
    log_px, elbo, khat, means = [], [], [], []
    for start in range(0, n, size):
        x = images[start : start + size]
        count = x.shape[0]
        if count < size:
            x = jnp.concatenate([x, jnp.zeros((size - count, x.shape[1]), x.dtype)])
        log_w = np.asarray(image_log_weights(params, x, jax.random.fold_in(key, start), k, chunk), np.float64)
        log_w = log_w[:count]
        log_px.append(logsumexp(log_w, axis=1) - math.log(k))
        elbo.append(log_w.mean(axis=1))
        khat.append(khat_per_image(log_w))
        means.append(np.asarray(encode(params, x[:count])[0], np.float64))
    return Scores(*(np.concatenate(part) for part in (log_px, elbo, khat, means)))


def gaussian_log_weights(decoder, x: jax.Array, mean: jax.Array, log_sd: jax.Array, eps: jax.Array) -> jax.Array:
    """(K, B) log weights log p(x | z) + log p(z) − log q(z) at z = m + s ε of images x
    (B, pixels) under per-image Gaussians q = N(m, diag s²) (``mean``, ``log_sd``: (B,
    latents); ``eps``: (K, B, latents))."""
    z = mean + jnp.exp(log_sd) * eps
    log_q = jnp.sum(-0.5 * eps**2 - log_sd - _HALF_LOG_2PI, axis=-1)
    log_prior = jnp.sum(-0.5 * z**2 - _HALF_LOG_2PI, axis=-1)
    return bernoulli_log_likelihood(mlp(decoder, z), x) + log_prior - log_q


@partial(jax.jit, static_argnames=("steps", "draws"))
def fit_local_gaussians(decoder, x: jax.Array, mean: jax.Array, log_sd: jax.Array, key: jax.Array,
                        steps: int, draws: int, lr: float) -> tuple[jax.Array, jax.Array]:
    """Per-image Gaussians (mean, log sd) maximizing each image's ELBO under ``decoder``:
    ``steps`` Adam steps from (``mean``, ``log_sd``) on the reparameterized ELBO with
    ``draws`` draws a step, every image in one batch (the images' ELBOs are summed; their
    parameters are separate, so each image follows its own gradient)."""
    opt = optax.adam(lr)

    def negative_elbo(q, eps):
        return -jnp.sum(jnp.mean(gaussian_log_weights(decoder, x, q[0], q[1], eps), axis=0))

    def step(carry, step_key):
        q, state = carry
        eps = jax.random.normal(step_key, (draws, *mean.shape), mean.dtype)
        updates, state = opt.update(jax.grad(negative_elbo)(q, eps), state, q)
        return (optax.apply_updates(q, updates), state), None

    q = (mean, log_sd)
    (q, _), _ = jax.lax.scan(step, (q, opt.init(q)), jax.random.split(key, steps))
    return q


@partial(jax.jit, static_argnames=("k", "chunk"))
def paired_elbos(decoder, x, q_a, q_b, key, k: int, chunk: int) -> tuple[jax.Array, jax.Array]:
    """Per image (B,), the ELBO estimates of two sets of per-image Gaussians ``q_a``,
    ``q_b`` (each (mean, log sd)) from the same ``k`` noise draws, ``chunk`` at a time."""
    n_chunks = -(-k // chunk)

    def one(j):
        eps = jax.random.normal(jax.random.fold_in(key, j), (chunk, *q_a[0].shape), q_a[0].dtype)
        return gaussian_log_weights(decoder, x, *q_a, eps), gaussian_log_weights(decoder, x, *q_b, eps)

    log_a, log_b = jax.lax.map(one, jnp.arange(n_chunks))
    flat = lambda log_w: log_w.reshape(n_chunks * chunk, x.shape[0])[:k].mean(axis=0)
    return flat(log_a), flat(log_b)


def amortization_gaps(params: Params, arch: Architecture, images, key, budget: int,
                      steps: int = GAP_STEPS, draws: int = GAP_DRAWS, lr: float = GAP_LR,
                      eval_draws: int = GAP_EVAL_DRAWS) -> np.ndarray:
    """Per image of ``images`` (n, pixels): the ELBO of its own fitted Gaussian minus the
    encoder's ELBO (:func:`fit_local_gaussians`, :func:`paired_elbos`), nats."""
    x = jnp.asarray(images, params["decoder"][0]["w"].dtype)
    key_fit, key_eval = jax.random.split(key)
    amortized = encode(params, x)
    local = fit_local_gaussians(params["decoder"], x, *amortized, key_fit, steps, draws, lr)
    chunk = draws_per_chunk(arch, x.shape[0], eval_draws, budget // 2)  # two sets of activations
    elbo_amortized, elbo_local = paired_elbos(params["decoder"], x, amortized, local, key_eval, eval_draws, chunk)
    return np.asarray(elbo_local, np.float64) - np.asarray(elbo_amortized, np.float64)


def khat_per_image(log_w: np.ndarray) -> np.ndarray:
    """PSIS k-hat of each row of ``log_w`` (images, draws); NaN for fewer than 10 draws."""
    if log_w.shape[1] < 10:
        return np.full(log_w.shape[0], np.nan)
    with np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ warns once per batch when some k-hat is high
        _, khat = az.psislw(log_w, reff=1.0)
    return np.atleast_1d(np.asarray(khat, np.float64))


def active_units(means: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Latent units whose encoder mean varies over the images by more than ``threshold``."""
    return int(np.sum(np.var(means, axis=0, ddof=1) > threshold))


def _mean(values: np.ndarray) -> Estimate:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Estimate(math.nan, math.nan)
    se = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else math.nan
    return Estimate(float(values.mean()), se)


# ----------------------------------------------------------------------- metrics
def applies(ev: Evaluation) -> bool:
    return ev.task.extension(DeepGenerative) is not None and isinstance(ev.approx.family, DeepGenerativeFamily)


@lru_cache(maxsize=2)
def _scores(ev: Evaluation) -> Scores:
    ext = ev.task.extension(DeepGenerative)
    return score_images(ev.approx.params, ev.approx.family.arch, ext.test, ev.key_q, ext.eval_k, ev.budget)


def test_log_px(ev: Evaluation) -> Estimate:
    """Mean over test images of the K-draw IS estimate of log p(x), nats per image."""
    return _mean(_scores(ev).log_px)


def test_elbo(ev: Evaluation) -> Estimate:
    """Mean over test images of the ELBO of q(z | x), nats per image."""
    return _mean(_scores(ev).elbo)


def test_khat(ev: Evaluation) -> Estimate:
    """Mean over test images of each image's PSIS k-hat."""
    return _mean(_scores(ev).khat)


def test_khat_unreliable(ev: Evaluation) -> Estimate:
    """Fraction of test images whose k-hat exceeds 0.7, with its binomial standard error."""
    khat = _scores(ev).khat
    khat = khat[np.isfinite(khat)]
    if khat.size == 0:
        return Estimate(math.nan, math.nan)
    p = float(np.mean(khat > UNRELIABLE_KHAT))
    return Estimate(p, math.sqrt(p * (1 - p) / khat.size))


def test_active_units(ev: Evaluation) -> Estimate:
    """Burda's active units over the test images (exact given them)."""
    return Estimate(float(active_units(_scores(ev).means)))


def test_amortization_gap(ev: Evaluation) -> Estimate:
    """Mean over the first :data:`GAP_IMAGES` test images of the per-image ELBO gain of a
    Gaussian fitted to the image alone over the encoder's q(z | x), nats per image."""
    images = ev.task.extension(DeepGenerative).test[:GAP_IMAGES]
    key = jax.random.fold_in(ev.key_q, GAP_STREAM)
    return _mean(amortization_gaps(ev.approx.params, ev.approx.family.arch, images, key, ev.budget))
