"""The computation of :mod:`vibench.methods.flows` (declared there, with its parameters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from vibench.core import Approximation, Array, Data, LogDensity, Task
from vibench.families.flow import Flow
from vibench.methods._advi import make_optimizer
from vibench.methods.flows import FlowConfig


def flow_of(config: FlowConfig, dim: int) -> Flow:
    return Flow(
        kind=config.kind,
        dim=dim,
        layers=config.layers,
        hidden=config.hidden,
        depth=config.depth,
        knots=config.knots,
        interval=config.interval,
    )


def temperatures(steps: int, anneal: float, beta0: float) -> Array:
    """β_t for each step: geometric from ``beta0`` to 1 over the first ``anneal`` fraction
    of the steps, then 1 (all ones when that fraction rounds to no step)."""
    if not 0 <= anneal <= 1 or not 0 < beta0 <= 1:
        raise ValueError(
            f"flow: anneal must lie in [0, 1] and beta0 in (0, 1], got {anneal}, {beta0}"
        )
    ramp = round(anneal * steps)
    t = jnp.arange(steps)
    return jnp.where(t < ramp, beta0 ** (1 - t / max(ramp, 1)), 1.0)


def annealed_loss(family: Flow, logdensity: LogDensity, data: Data, num_samples: int):
    """``loss(params, key, beta) -> (−E_q[β log p − log q], ELBO)``: the Monte Carlo
    annealed objective, log q from the forward pass, and the ELBO (β = 1) of the same draws."""
    logp = jax.vmap(logdensity.logp, in_axes=(0, None))

    def loss(params, key, beta):
        z, log_q = family.sample_and_log_prob(params, key, num_samples)
        log_p = logp(z, data)
        return -jnp.mean(beta * log_p - log_q), jnp.mean(log_p - log_q)

    return loss


def optimize_annealed(loss, params, optimizer: optax.GradientTransformation, key, betas: Array):
    """One optimizer step of ``loss(params, key, β_t)`` per β_t under ``lax.scan``.

    Returns the final params and the trace of the ELBO (``loss``'s second output) per step.
    """

    def step(carry, inputs):
        params, state = carry
        key, beta = inputs
        (_, elbo), grads = jax.value_and_grad(loss, has_aux=True)(params, key, beta)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), elbo

    keys = jax.random.split(key, betas.shape[0])
    (params, _), trace = jax.lax.scan(step, (params, optimizer.init(params)), (keys, betas))
    return params, trace


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: FlowConfig):
    family = flow_of(config, logdensity.dim)
    betas = temperatures(config.steps, config.anneal, config.beta0)
    key_loc, key_weights, key_steps = jax.random.split(key, 3)
    params = family.init(key_weights, logdensity.init(key_loc), config.init_scale)
    loss = annealed_loss(family, logdensity, data, config.num_samples)
    optimizer = make_optimizer(config.optimizer, config.lr, config.schedule, config.steps)
    params, trace = optimize_annealed(loss, params, optimizer, key_steps, betas)
    return Approximation(
        params=params,
        trace=trace,
        grad_evals=jnp.asarray(config.steps * config.num_samples),
        family=family,
    )
