"""The computation of :mod:`vibench.methods.vae` (declared there, with its parameters): the
bounds and their gradients, the schedule, the data order shared by both backends, and the
JAX backend (one compiled epoch under ``lax.scan``)."""

from __future__ import annotations

import math
import time
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.generative import Architecture, DeepGenerativeFamily, Params, init_params, log_weights
from vibench.methods.vae import VAEConfig
from vibench.structure.generative import DeepGenerative

ADAM = {"b1": 0.9, "b2": 0.999, "eps": 1e-4}
"""Burda et al.'s Adam settings."""
BURDA_STAGES = 8


def supports(task: Task) -> tuple[bool, str]:
    ext = task.extension(DeepGenerative)
    if ext is None:
        return False, ("needs an amortized deep generative model (a DeepGenerative task extension: "
                       "training images, decoder likelihood, test images), e.g. mnist")
    if ext.likelihood != "bernoulli":
        return False, f"has a Bernoulli decoder only; the task's likelihood is {ext.likelihood}"
    return True, ""


def architecture(config: VAEConfig, pixels: int) -> Architecture:
    return Architecture(pixels=pixels, latents=config.latents, hidden=(config.hidden,) * config.layers)


def learning_rates(config: VAEConfig) -> np.ndarray:
    """The learning rate of each epoch: Burda's 3^i epochs at lr·10^(−i/7), i = 0 … 7 (the
    last stage continued past 3 280 epochs), or ``lr`` throughout."""
    epochs = np.arange(config.epochs)
    if config.schedule == "constant":
        return np.full(config.epochs, config.lr, np.float32)
    ends = np.cumsum(3 ** np.arange(BURDA_STAGES))  # 1, 4, 13, ..., 3280
    stage = np.minimum(np.searchsorted(ends, epochs, side="right"), BURDA_STAGES - 1)
    return (config.lr * 10.0 ** (-stage / (BURDA_STAGES - 1))).astype(np.float32)


def batches_per_epoch(n: int, batch_size: int) -> int:
    if batch_size > n:
        raise ValueError(f"vae needs batch_size <= {n} (the training images); got {batch_size}")
    return n // batch_size


@partial(jax.jit, static_argnums=(2, 3))
def epoch_order(key: jax.Array, epoch, n: int, batch_size: int) -> jax.Array:
    """The images of each minibatch of ``epoch``: (batches, batch_size) indices of a random
    permutation (the remainder dropped). Both backends use it, so they see the data in
    the same order."""
    index = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, epoch), 0), n)
    count = batches_per_epoch(n, batch_size)
    return index[: count * batch_size].reshape(count, batch_size)


def bound(log_w: jax.Array, objective: str) -> jax.Array:
    """Per image (log w: (K, B)): the ELBO estimate mean_k log w_k, or the IWAE bound
    log (1/K) Σ_k w_k."""
    if objective == "iwae":
        return jax.nn.logsumexp(log_w, axis=0) - math.log(log_w.shape[0])
    return jnp.mean(log_w, axis=0)


def bound_and_grad(params: Params, x: jax.Array, eps: jax.Array, objective: str, dreg: bool):
    """The batch's mean bound and its gradient in the parameters (ascent direction)."""
    if not dreg:
        return jax.value_and_grad(lambda p: jnp.mean(bound(log_weights(p, x, eps), objective)))(params)
    log_w, vjp = jax.vjp(lambda p: log_weights(p, x, eps, q_params=jax.lax.stop_gradient(p)), params)
    batch = x.shape[0]
    if objective == "iwae":
        w = jax.nn.softmax(log_w, axis=0)
        c_decoder, c_encoder = w / batch, w**2 / batch
    else:
        c_decoder = c_encoder = jnp.full_like(log_w, 1.0 / (log_w.shape[0] * batch))
    grads = {"decoder": vjp(c_decoder)[0]["decoder"], "encoder": vjp(c_encoder)[0]["encoder"]}
    return jnp.mean(bound(log_w, objective)), grads


def optimizer() -> optax.GradientTransformation:
    return optax.inject_hyperparams(optax.adam)(learning_rate=1e-3, **ADAM)


@lru_cache(maxsize=16)
def compiled_epoch(arch: Architecture, config: VAEConfig, n: int, dynamic: bool):
    """``(epoch(params, opt_state, x, grey, key, epoch, lr) -> (params, opt_state, mean
    bound), compile seconds)``, compiled once per architecture, config and data size."""
    opt = optimizer()
    k, size = config.k, config.batch_size

    def epoch_fn(params, opt_state, x, grey, key, epoch, lr):
        order = epoch_order(key, epoch, n, size)
        noise_key = jax.random.fold_in(jax.random.fold_in(key, epoch), 1)
        opt_state.hyperparams["learning_rate"] = lr

        def step(carry, inputs):
            params, opt_state = carry
            index, step_key = inputs
            key_eps, key_pixels = jax.random.split(step_key)
            batch = jax.random.bernoulli(key_pixels, grey[index]).astype(x.dtype) if dynamic else x[index]
            eps = jax.random.normal(key_eps, (k, size, arch.latents), x.dtype)
            value, grads = bound_and_grad(params, batch, eps, config.objective, config.dreg)
            updates, opt_state = opt.update(jax.tree.map(jnp.negative, grads), opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        keys = jax.random.split(noise_key, order.shape[0])
        (params, opt_state), values = jax.lax.scan(step, (params, opt_state), (order, keys))
        return params, opt_state, jnp.mean(values)

    params = init_params(arch, jax.random.key(0), jnp.zeros(arch.pixels))
    shapes = jax.eval_shape(lambda p: (p, opt.init(p)), params)
    x_shape = jax.ShapeDtypeStruct((n, arch.pixels), jnp.float32)
    scalar = jax.ShapeDtypeStruct((), jnp.int32)
    start = time.perf_counter()
    compiled = (
        jax.jit(epoch_fn, donate_argnums=(0, 1))
        .lower(*shapes, x_shape, x_shape, jax.eval_shape(lambda: jax.random.key(0)), scalar,
               jax.ShapeDtypeStruct((), jnp.float32))
        .compile()
    )
    return compiled, time.perf_counter() - start


def train_jax(arch: Architecture, config: VAEConfig, x: jax.Array, grey, key: jax.Array):
    """``(params, bound per epoch, diagnostics)`` of the JAX backend."""
    key_init, key_train = jax.random.split(key)
    params = init_params(arch, key_init, jnp.mean(x if grey is None else grey, axis=0))
    opt_state = optimizer().init(params)
    epoch, compile_s = compiled_epoch(arch, config, x.shape[0], grey is not None)
    grey = x if grey is None else grey  # an unused argument when static
    trace, seconds = [], []
    for e, lr in enumerate(learning_rates(config)):
        start = time.perf_counter()
        params, opt_state, value = epoch(params, opt_state, x, grey, key_train, jnp.int32(e), jnp.float32(lr))
        trace.append(jax.block_until_ready(value))
        seconds.append(time.perf_counter() - start)
    return params, jnp.stack(trace), {"time_compile_s": compile_s, **epoch_diagnostics(seconds)}


def epoch_diagnostics(seconds: list[float]) -> dict[str, float]:
    """Mean epoch time, the first epoch left out when there are others (warm-up)."""
    timed = seconds[1:] or seconds
    return {"epoch_time_s": float(np.mean(timed))}


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: VAEConfig) -> Approximation:
    ext = task.extension(DeepGenerative)
    x = data[ext.train_key]
    arch = architecture(config, ext.pixels)
    batches_per_epoch(x.shape[0], config.batch_size)
    if config.backend == "torch":
        from vibench.methods._vae_torch import train_torch

        params, trace, diagnostics = train_torch(arch, config, x, ext.grey, key)
    else:
        params, trace, diagnostics = train_jax(arch, config, x, ext.grey, key)
    diagnostics["train_bound"] = float(trace[-1])
    return Approximation(
        params=params,
        trace=trace,
        grad_evals=jnp.asarray(config.epochs * config.k),
        family=DeepGenerativeFamily(arch),
        objective=config.objective,
        diagnostics={name: jnp.asarray(value) for name, value in diagnostics.items()},
    )
