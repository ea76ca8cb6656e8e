"""The PyTorch backend of :mod:`vibench.methods.vae`: the same architecture, initialization
scheme (Glorot-uniform weights, zero biases, the decoder's output bias at the pixels'
logits), Adam settings, learning-rate schedule and data order (:func:`vibench.methods._vae.epoch_order`)
as the JAX backend, with its own noise. Data arrive from JAX through DLPack (no copy on
the same device); the fitted weights go back as JAX arrays in the layout of
:mod:`vibench.families.generative`. Epoch times are read after ``torch.cuda.synchronize``
on a GPU. Importing this module needs the ``torch`` extra.
"""

from __future__ import annotations

import itertools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

from vibench.families.generative import Architecture, Params
from vibench.methods._vae import ADAM, epoch_diagnostics, epoch_order, learning_rates
from vibench.methods.vae import VAEConfig

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def from_jax(x: jax.Array) -> torch.Tensor:
    """A tensor sharing ``x``'s memory (DLPack)."""
    return torch.from_dlpack(x)


def mlp_layers(sizes: list[int], device) -> torch.nn.ModuleList:
    layers = torch.nn.ModuleList(torch.nn.Linear(a, b, device=device) for a, b in itertools.pairwise(sizes))
    for layer in layers:
        torch.nn.init.xavier_uniform_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    return layers


def mlp(layers: torch.nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    for layer in layers[:-1]:
        x = torch.tanh(layer(x))
    return layers[-1](x)


class Model(torch.nn.Module):
    """Encoder and decoder of :class:`vibench.families.generative.Architecture`."""

    def __init__(self, arch: Architecture, pixel_mean: torch.Tensor) -> None:
        super().__init__()
        self.latents = arch.latents
        self.encoder = mlp_layers(arch.encoder_sizes(), pixel_mean.device)
        self.decoder = mlp_layers(arch.decoder_sizes(), pixel_mean.device)
        p = pixel_mean.clamp(1e-3, 1 - 1e-3)
        with torch.no_grad():
            self.decoder[-1].bias.copy_(torch.log(p) - torch.log1p(-p))

    def forward(self, x: torch.Tensor, eps: torch.Tensor, stop_q: bool) -> torch.Tensor:
        """log w (K, B) at z = μ(x) + σ(x) ε; ``stop_q`` holds log q's parameters fixed."""
        out = mlp(self.encoder, x)
        mean, log_sd = out[:, : self.latents], out[:, self.latents :]
        z = mean + torch.exp(log_sd) * eps
        q_mean, q_log_sd = (mean.detach(), log_sd.detach()) if stop_q else (mean, log_sd)
        log_q = (-0.5 * ((z - q_mean) / torch.exp(q_log_sd)) ** 2 - q_log_sd - _HALF_LOG_2PI).sum(-1)
        log_prior = (-0.5 * z**2 - _HALF_LOG_2PI).sum(-1)
        logits = mlp(self.decoder, z)
        log_lik = (x * logits - torch.nn.functional.softplus(logits)).sum(-1)
        return log_lik + log_prior - log_q


def bound(log_w: torch.Tensor, objective: str) -> torch.Tensor:
    if objective == "iwae":
        return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])
    return log_w.mean(0)


def step(model: Model, forward, opt: torch.optim.Optimizer, x, eps, config: VAEConfig) -> torch.Tensor:
    """One Adam step on a batch; returns the batch's mean bound (detached)."""
    opt.zero_grad(set_to_none=True)
    log_w = forward(x, eps, config.dreg)
    value = bound(log_w, config.objective).mean()
    if not config.dreg:
        (-value).backward()
        opt.step()
        return value.detach()
    batch = x.shape[0]
    with torch.no_grad():
        if config.objective == "iwae":
            w = torch.softmax(log_w, 0)
            c_decoder, c_encoder = w / batch, w**2 / batch
        else:
            c_decoder = c_encoder = torch.full_like(log_w, 1.0 / log_w.numel())
    decoder, encoder = list(model.decoder.parameters()), list(model.encoder.parameters())
    g_decoder = torch.autograd.grad((c_decoder * log_w).sum(), decoder, retain_graph=True)
    g_encoder = torch.autograd.grad((c_encoder * log_w).sum(), encoder)
    for p, g in zip(decoder + encoder, g_decoder + g_encoder):
        p.grad = -g
    opt.step()
    return value.detach()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def export(model: Model) -> Params:
    """The weights as JAX arrays, layers ``{"w": (in, out), "b": (out,)}``."""

    def layers(modules):
        return [{"w": jnp.asarray(m.weight.detach().cpu().numpy().T), "b": jnp.asarray(m.bias.detach().cpu().numpy())}
                for m in modules]

    return {"encoder": layers(model.encoder), "decoder": layers(model.decoder)}


def train_torch(arch: Architecture, config: VAEConfig, x_jax: jax.Array, grey_jax, key: jax.Array):
    """``(params, bound per epoch, diagnostics)`` of the PyTorch backend."""
    key_init, key_train = jax.random.split(key)
    torch.manual_seed(int(jax.random.randint(key_init, (), 0, 2**31 - 1)))
    x = from_jax(x_jax)
    grey = None if grey_jax is None else from_jax(grey_jax)
    device = x.device
    model = Model(arch, (x if grey is None else grey).mean(0))
    forward = torch.compile(model.forward) if config.compile else model.forward
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(ADAM["b1"], ADAM["b2"]), eps=ADAM["eps"])
    n, size = x.shape[0], config.batch_size
    trace, seconds = [], []
    for e, lr in enumerate(learning_rates(config)):
        for group in opt.param_groups:
            group["lr"] = float(lr)
        order = torch.from_numpy(np.array(epoch_order(key_train, e, n, size))).to(device)
        _sync(device)
        start = time.perf_counter()
        total = torch.zeros((), device=device)
        for index in order:
            batch = torch.bernoulli(grey[index]) if grey is not None else x[index]
            eps = torch.randn(config.k, size, arch.latents, device=device)
            total += step(model, forward, opt, batch, eps, config)
        _sync(device)
        seconds.append(time.perf_counter() - start)
        trace.append(float(total) / len(order))
    return export(model), jnp.asarray(trace, jnp.float32), epoch_diagnostics(seconds)
