"""The computation of :mod:`vibench.methods.iwae` (declared there, with its parameters)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.gaussian import gaussian_family
from vibench.methods._advi import budget_steps, make_optimizer, optimize
from vibench.methods.iwae import IWAEConfig


def log_weights(family, params, logdensity: LogDensity, data: Data, key, shape, stick: bool = False):
    """log w = log p(x, z) − log q(z) at draws z ~ q, shape ``shape`` (…, K)."""
    z, log_q = family.sample_and_log_prob(params, key, math.prod(shape), stick=stick)
    log_w = jax.vmap(logdensity.logp, in_axes=(0, None))(z, data) - log_q
    return log_w.reshape(shape)


def iwae_bound(log_w):
    """log (1/K) Σ_k w_k over the last axis, from log weights."""
    return jax.nn.logsumexp(log_w, axis=-1) - jnp.log(log_w.shape[-1])


def negative_iwae_bound(family, logdensity: LogDensity, data: Data, k: int, num_estimates: int, dreg: bool):
    """``loss(params, key)``: minus the mean of ``num_estimates`` estimates of L_K.

    Its value is always −L̂_K; with ``dreg`` its gradient is the DReG estimator (a
    surrogate Σ_k sg(w̃_k²) log w_k, log q with parameters held fixed, added at zero
    value), else the pathwise gradient of L̂_K itself.
    """
    shape = (num_estimates, k)

    def loss(params, key):
        log_w = log_weights(family, params, logdensity, data, key, shape, stick=dreg)
        bound = jnp.mean(iwae_bound(log_w))
        if not dreg:
            return -bound
        normalized = jax.lax.stop_gradient(jax.nn.softmax(log_w, axis=-1))
        surrogate = jnp.mean(jnp.sum(normalized**2 * log_w, axis=-1))
        return -(jax.lax.stop_gradient(bound) + surrogate - jax.lax.stop_gradient(surrogate))

    return loss


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: IWAEConfig):
    family = gaussian_family(config.family, config.rank)
    key_init, key_steps = jax.random.split(key)
    params = family.init(logdensity.init(key_init), config.init_scale)
    loss = negative_iwae_bound(family, logdensity, data, config.k, config.num_estimates, config.dreg)
    optimizer = make_optimizer(config.optimizer, config.lr, config.schedule, config.steps)
    params, trace = optimize(loss, params, optimizer, key_steps, config.steps)
    return Approximation(
        params=params,
        trace=trace,
        grad_evals=jnp.asarray(config.steps * config.k * config.num_estimates),
        family=family,
        objective="iwae_bound",
    )


def budget(config: IWAEConfig, grad_evals: int, task: Task) -> IWAEConfig:
    """The most steps of k · num_estimates gradients each that fit in ``grad_evals``."""
    per_step = config.k * config.num_estimates
    why = f"k * num_estimates = {per_step} per step"
    return budget_steps(config, grad_evals, per_step, why)
