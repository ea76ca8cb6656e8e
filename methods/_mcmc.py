"""The computation of :mod:`vibench.methods.mcmc` (declared there, with its parameters)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jax
import jax.numpy as jnp
from numpyro.infer.hmc import hmc as numpyro_hmc

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.draws import Draws
from vibench.methods.mcmc import HMCConfig, NUTSConfig
from vibench.numerics.mcmc_diagnostics import worst_case
from vibench.spec import BudgetTooSmall, field_range


def nuts_iteration_cost(config: NUTSConfig) -> int:
    """The most leapfrog steps one NUTS iteration of all chains can take."""
    return config.num_chains * (2**config.max_tree_depth - 1)


def run_chains(
    logdensity: LogDensity,
    data: Data,
    key: jax.Array,
    config: NUTSConfig | HMCConfig,
    algo: str,
    kernel_options: dict[str, Any],
    max_grad_evals: int = 0,
    iteration_cost: int = 0,
) -> Approximation:
    """Warm up and sample ``config.num_chains`` chains in lockstep; an iteration runs
    only while ``spent + iteration_cost <= max_grad_evals`` (when that is positive)."""

    def potential(z):
        return -logdensity.logp(z, data)

    init_kernel, sample_kernel = numpyro_hmc(potential_fn=potential, algo=algo)
    key_init, key_kernel = jax.random.split(key)

    def init(key_position, key_chain):
        return init_kernel(
            logdensity.init(key_position),
            config.num_warmup,
            target_accept_prob=config.target_accept,
            dense_mass=config.dense_mass,
            rng_key=key_chain,
            **kernel_options,
        )

    chains = config.num_chains
    states = jax.vmap(init)(jax.random.split(key_init, chains), jax.random.split(key_kernel, chains))
    spent = jnp.asarray(chains)  # the gradient at each chain's start

    def step(carry, _):
        states, spent = carry
        running = spent + iteration_cost <= max_grad_evals if max_grad_evals > 0 else jnp.asarray(True)
        states = jax.lax.cond(running, jax.vmap(sample_kernel), lambda s: s, states)
        spent = spent + jnp.where(running, jnp.sum(states.num_steps), 0)
        record = (states.z, -states.potential_energy, states.accept_prob, states.diverging)
        return (states, spent), (running, record)

    total = config.num_warmup + config.num_samples
    (_, spent), (ran, (z, log_joint, accept, diverging)) = jax.lax.scan(
        step, (states, spent), None, length=total
    )
    sampling = ran[config.num_warmup :]
    num_valid = jnp.sum(sampling)
    draws = jnp.where(ran[:, None, None], z, jnp.nan)[config.num_warmup :].transpose(1, 0, 2)
    after_warmup = sampling[:, None]
    return Approximation(
        params={"draws": draws, "num_valid": num_valid},
        trace=jnp.where(ran, jnp.mean(log_joint, axis=1), jnp.nan),
        grad_evals=spent,
        family=Draws(kind="mcmc"),
        objective="log_joint",
        steps=jnp.sum(ran),
        out_of_budget=~ran[-1],
        diagnostics={
            **worst_case(draws, num_valid),
            "divergences": jnp.sum(diverging[config.num_warmup :] & after_warmup),
            "accept_prob": jnp.sum(jnp.where(after_warmup, accept[config.num_warmup :], 0.0))
            / (num_valid * chains),
        },
    )


def fit_nuts(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: NUTSConfig):
    return run_chains(
        logdensity,
        data,
        key,
        config,
        "NUTS",
        {"max_tree_depth": config.max_tree_depth},
        config.max_grad_evals,
        nuts_iteration_cost(config),
    )


def fit_hmc(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: HMCConfig):
    return run_chains(
        logdensity, data, key, config, "HMC", {"num_steps": config.num_steps, "trajectory_length": None}
    )


MIN_ITERATIONS = 200
"""Iterations per chain (warm-up and sampling) below which a budget is refused, unless
fewer are configured: NumPyro's warm-up needs some 100 iterations for its step size and
mass-matrix windows, and sampling as many for a usable effective sample size."""

MIN_TREE_DEPTH = 4
"""The tree depth a budget may lower NUTS's cap to (up to 15 leapfrog steps): enough for
a posterior that the adapted diagonal mass matrix leaves with a condition number near
15² (the trajectory NUTS needs grows with the ratio of the largest to the smallest scale)."""


def budget_iterations(config: NUTSConfig | HMCConfig, grad_evals: int, leapfrog: int) -> int:
    """The most iterations of all chains, at most ``leapfrog`` gradients per chain each,
    that fit in ``grad_evals`` after the chains' starting gradients."""
    return (grad_evals // config.num_chains - 1) // leapfrog


def budget_split(config, iterations: int, grad_evals: int, leapfrog: int, why: str):
    """``config`` with ``iterations`` (at most the configured ones) split between warm-up
    and sampling as configured; refused below ``MIN_ITERATIONS`` (or the configured
    total, if fewer), naming the budget those would cost."""
    total = config.num_warmup + config.num_samples
    needed = min(total, MIN_ITERATIONS)
    if iterations < needed:
        minimum = config.num_chains * (1 + needed * leapfrog)
        raise BudgetTooSmall(minimum, f"{needed} iterations of {config.num_chains} chains, {why}", grad_evals)
    iterations = min(iterations, total)
    warmup = iterations * config.num_warmup // total
    return replace(config, num_warmup=warmup, num_samples=iterations - warmup)


def budget_nuts(config: NUTSConfig, grad_evals: int, task: Task) -> NUTSConfig:
    """Warm-up and sampling that fit in ``grad_evals`` even if every tree is as deep as
    allowed: the configured iterations under the deepest tree-depth cap (at most the
    configured one) at which they all fit, the cap lowered no further than
    ``MIN_TREE_DEPTH``; at that cap, as many iterations as fit, split between warm-up
    and sampling as configured. ``max_grad_evals`` stays as a guard (never reached)."""
    total = config.num_warmup + config.num_samples
    fits = [d for d in range(1, config.max_tree_depth + 1) if budget_iterations(config, grad_evals, 2**d - 1) >= total]
    depth = min(config.max_tree_depth, max(fits[-1] if fits else 1, MIN_TREE_DEPTH))
    leapfrog = 2**depth - 1
    iterations = budget_iterations(config, grad_evals, leapfrog)
    why = f"at most {leapfrog} gradients each per iteration (tree depth {depth})"
    split = budget_split(config, iterations, grad_evals, leapfrog, why)
    guard = min(grad_evals, field_range(NUTSConfig, "max_grad_evals").high)
    return replace(split, max_tree_depth=depth, max_grad_evals=guard)


def budget_hmc(config: HMCConfig, grad_evals: int, task: Task) -> HMCConfig:
    """As many iterations as fit in ``grad_evals`` (at most the configured ones), split
    between warm-up and sampling as configured."""
    iterations = budget_iterations(config, grad_evals, config.num_steps)
    why = f"{config.num_steps} gradients each per iteration (num_steps)"
    return budget_split(config, iterations, grad_evals, config.num_steps, why)
