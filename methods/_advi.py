"""The computation of :mod:`vibench.methods.advi` (declared there, with its parameters)."""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import optax

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.gaussian import gaussian_family
from vibench.methods.advi import ADVIConfig
from vibench.spec import BudgetTooSmall, field_range


def make_optimizer(name: str, lr: float, schedule: str, steps: int) -> optax.GradientTransformation:
    """An optax optimizer with a constant or cosine-decayed learning rate."""
    rate = optax.cosine_decay_schedule(lr, steps, alpha=0.01) if schedule == "cosine" else lr
    return getattr(optax, name)(rate)


def negative_elbo(family, logdensity: LogDensity, data: Data, num_samples: int, stl: bool):
    """``loss(params, key)``: the negative Monte Carlo ELBO with pathwise gradients."""
    logp = jax.vmap(logdensity.logp, in_axes=(0, None))

    def loss(params, key):
        if stl:
            z, log_q = family.sample_and_log_prob(params, key, num_samples, stick=True)
            return -jnp.mean(logp(z, data) - log_q)
        z = family.sample(params, key, num_samples)
        return -(jnp.mean(logp(z, data)) + family.entropy(params))

    return loss


def optimize(loss, params, optimizer: optax.GradientTransformation, key, steps: int):
    """Run ``steps`` optimizer steps of ``loss(params, key)`` under ``lax.scan``.

    Returns the final params and the trace of ``-loss`` (the objective) per step.
    """

    def step(carry, key):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params, key)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), -value

    (params, _), trace = jax.lax.scan(
        step, (params, optimizer.init(params)), jax.random.split(key, steps)
    )
    return params, trace


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: ADVIConfig):
    family = gaussian_family(config.family, config.rank)
    key_init, key_steps = jax.random.split(key)
    params = family.init(logdensity.init(key_init), config.init_scale)
    loss = negative_elbo(family, logdensity, data, config.num_samples, config.stl)
    optimizer = make_optimizer(config.optimizer, config.lr, config.schedule, config.steps)
    params, trace = optimize(loss, params, optimizer, key_steps, config.steps)
    return Approximation(
        params=params,
        trace=trace,
        grad_evals=jnp.asarray(config.steps * config.num_samples),
        family=family,
    )


def budget(config, grad_evals: int, task: Task):
    """The most steps that spend at most ``grad_evals`` at ``num_samples`` gradients per
    step, up to the declared cap on ``steps`` (any config with ``steps`` and
    ``num_samples``: the flow's too, and BBVI's, whose unit is a log-joint evaluation)."""
    return budget_steps(config, grad_evals, config.num_samples, f"num_samples={config.num_samples} per step")


def budget_steps(config, grad_evals: int, per_step: int, why: str):
    """``config`` with the most ``steps`` of ``per_step`` evaluations each that fit in
    ``grad_evals`` (at most the declared cap); too small for one step is refused."""
    if grad_evals < per_step:
        raise BudgetTooSmall(per_step, why, grad_evals)
    return replace(config, steps=min(grad_evals // per_step, field_range(type(config), "steps").high))
