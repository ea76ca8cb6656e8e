"""IWAE: Gaussian VI on the importance-weighted bound (Burda, Grosse & Salakhutdinov 2016).

Maximizes L_K = E[log (1/K) Σ_k w_k], w_k = p(x, z_k) / q(z_k), z_1..K ~ q i.i.d.:
a lower bound on log p(x) that is the ELBO at K = 1 and rises to log p(x) as K grows
(for K large, log p(x) − L_K ≈ χ²(p ‖ q) / (2K), with p the posterior; Maddison et
al. 2017, Domke & Sheldon 2018). Each step averages
``num_estimates`` independent estimates of L_K and takes their pathwise gradient;
an optax optimizer runs under ``lax.scan`` (:func:`vibench.methods.advi.optimize`).

``dreg=True`` uses the doubly-reparameterized gradient (DReG; Tucker, Lawson, Gu &
Maddison 2019): Σ_k w̃_k² ∂log w_k/∂z_k · ∂z_k/∂φ with normalized weights
w̃_k = w_k / Σ_j w_j, log q's parameters held fixed (the family's ``stick=True``).
It has the expectation of the standard gradient without its score-function term, the
term that makes the standard estimator's signal-to-noise ratio for q's parameters fall
like 1/√K (Rainforth et al. 2018); DReG's rises like √K. K = 1 with ``dreg=True`` is
ADVI with sticking-the-landing gradients from ``num_estimates`` draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import jax
import jax.numpy as jnp

from vibench.core import Approximation, Data, LogDensity, Method, Task, any_task
from vibench.families import gaussian_family
from vibench.methods.advi import make_optimizer, optimize

VERSION = "1"


@dataclass(frozen=True)
class IWAEConfig:
    """family: Gaussian family; rank: factor rank (lowrank only); k: importance samples
    per bound estimate (K); num_estimates: bound estimates averaged per step; dreg:
    doubly-reparameterized gradients; steps, optimizer, lr, schedule, init_scale: as in
    ADVI."""

    family: Literal["meanfield", "fullrank", "lowrank"] = "meanfield"
    rank: int = 2
    k: int = 8
    num_estimates: int = 1
    dreg: bool = False
    steps: int = 2000
    optimizer: Literal["adam", "adamw", "adabelief", "rmsprop", "sgd"] = "adam"
    lr: float = 0.02
    schedule: Literal["cosine", "constant"] = "cosine"
    init_scale: float = 1.0


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
    return replace(config, steps=max(1, grad_evals // (config.k * config.num_estimates)))


iwae = Method(
    name="iwae",
    version=VERSION,
    Config=IWAEConfig,
    supports=any_task,
    fit=fit,
    budget=budget,
    doc=__doc__,
)
