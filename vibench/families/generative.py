"""A deep generative model with its amortized posterior: a Gaussian encoder q_φ(z | x) and
a Bernoulli decoder p_θ(x | z), multilayer perceptrons (Kingma & Welling 2014; Burda,
Grosse & Salakhutdinov 2016).

:class:`Architecture` is static and hashable; the parameters are a pytree
``{"encoder": [layer, ...], "decoder": [layer, ...]}``, a layer ``{"w": (in, out), "b":
(out,)}``. The encoder's hidden layers are tanh, its last layer gives the mean and log
standard deviation of q(z | x) = N(μ(x), diag σ(x)²); the decoder's hidden layers are
tanh, its last one the logits of the pixels. The prior is p(z) = N(0, I).

:class:`DeepGenerativeFamily` is the family of the :class:`vibench.core.Approximation`
a deep-generative-model method returns. It is no density over the task's flat latent
vector (the decoder is fitted too, so the task's fixed log joint does not describe the
fit): ``has_density`` is false and the posterior metrics do not apply; the model is
scored on held-out images by :mod:`vibench.metrics.generative`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vibench.core import Array, PRNGKey, Reference

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
Params = dict[str, list[dict[str, Array]]]


@dataclass(frozen=True)
class Architecture:
    """``pixels`` observed binary values, ``latents`` Gaussian units, ``hidden`` the
    widths of the tanh layers of the encoder (in order) and of the decoder (reversed)."""

    pixels: int
    latents: int
    hidden: tuple[int, ...]

    def encoder_sizes(self) -> list[int]:
        return [self.pixels, *self.hidden, 2 * self.latents]

    def decoder_sizes(self) -> list[int]:
        return [self.latents, *reversed(self.hidden), self.pixels]


def glorot_layers(key: PRNGKey, sizes: list[int]) -> list[dict[str, Array]]:
    """Layers with Glorot-uniform weights U(±√(6 / (in + out))) and zero biases (Glorot &
    Bengio 2010, the initialization Burda et al. used)."""
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:]):
        bound = math.sqrt(6.0 / (n_in + n_out))
        layers.append({"w": jax.random.uniform(k, (n_in, n_out), minval=-bound, maxval=bound), "b": jnp.zeros(n_out)})
    return layers


def init_params(arch: Architecture, key: PRNGKey, pixel_mean: Array) -> Params:
    """Glorot-initialized encoder and decoder; the decoder's output bias is the logit of
    each pixel's training mean (clipped to [10⁻³, 1 − 10⁻³]), so the initial model is the
    independent-pixel fit."""
    key_encoder, key_decoder = jax.random.split(key)
    decoder = glorot_layers(key_decoder, arch.decoder_sizes())
    p = jnp.clip(pixel_mean, 1e-3, 1 - 1e-3)
    decoder[-1] = {**decoder[-1], "b": jnp.log(p) - jnp.log1p(-p)}
    return {"encoder": glorot_layers(key_encoder, arch.encoder_sizes()), "decoder": decoder}


def mlp(layers: list[dict[str, Array]], x: Array) -> Array:
    """tanh hidden layers, linear last layer."""
    for layer in layers[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def encode(params: Params, x: Array) -> tuple[Array, Array]:
    """(mean, log sd) of q(z | x), each (..., latents), for images x (..., pixels)."""
    out = mlp(params["encoder"], x)
    latents = out.shape[-1] // 2
    return out[..., :latents], out[..., latents:]


def bernoulli_log_likelihood(logits: Array, x: Array) -> Array:
    """Σ_j x_j log σ(l_j) + (1 − x_j) log σ(−l_j) over the last axis."""
    return jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)


def log_weights(params: Params, x: Array, eps: Array, q_params: Params | None = None) -> Array:
    """log w = log p(x | z) + log p(z) − log q(z | x) at z = μ(x) + σ(x) ε.

    ``x`` (B, pixels), ``eps`` (K, B, latents) standard normal noise; returns (K, B).
    ``q_params`` (default ``params``) are the encoder parameters log q is evaluated with;
    passing ``stop_gradient(params)`` there holds log q's parameters fixed while z still
    moves with the encoder (DReG and sticking-the-landing gradients).
    """
    mean, log_sd = encode(params, x)
    z = mean + jnp.exp(log_sd) * eps
    q_mean, q_log_sd = encode(params if q_params is None else q_params, x)
    log_q = jnp.sum(-0.5 * ((z - q_mean) / jnp.exp(q_log_sd)) ** 2 - q_log_sd - _HALF_LOG_2PI, axis=-1)
    log_prior = jnp.sum(-0.5 * z**2 - _HALF_LOG_2PI, axis=-1)
    return bernoulli_log_likelihood(mlp(params["decoder"], z), x) + log_prior - log_q


@dataclass(frozen=True)
class DeepGenerativeFamily:
    """The family of a fitted deep generative model (see the module doc)."""

    arch: Architecture
    name: str = "deep_generative"
    has_density: bool = False

    def _no_density(self):
        raise TypeError("a deep generative model's q(z | x) is amortized over images, not a density over "
                        "the task's latent vector; it is scored by vibench.metrics.generative")

    def sample(self, params, key, n):
        self._no_density()

    def log_prob(self, params, z):
        self._no_density()

    def sample_and_log_prob(self, params, key, n):
        self._no_density()

    def gaussian(self, params) -> None:
        return None

    def best_elbo(self, reference: Reference) -> None:
        return None

    def valid_draws(self, params) -> None:
        return None
