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


def budget_nuts(config: NUTSConfig, grad_evals: int, task: Task) -> NUTSConfig:
    """Caps the run at ``grad_evals``; the iterations stay as configured (an upper bound)."""
    needed = config.num_chains + nuts_iteration_cost(config)
    if grad_evals < needed:
        raise ValueError(
            f"nuts: a budget of {grad_evals} gradient evaluations is below the worst-case cost "
            f"of one iteration of {config.num_chains} chains ({needed})"
        )
    return replace(config, max_grad_evals=grad_evals)


def budget_hmc(config: HMCConfig, grad_evals: int, task: Task) -> HMCConfig:
    """The most iterations that fit, split between warm-up and sampling as configured."""
    iterations = (grad_evals // config.num_chains - 1) // config.num_steps
    warmup = iterations * config.num_warmup // (config.num_warmup + config.num_samples)
    if iterations - warmup < 1:
        raise ValueError(
            f"hmc: a budget of {grad_evals} gradient evaluations leaves no sampling iteration "
            f"for {config.num_chains} chains of {config.num_steps} leapfrog steps"
        )
    return replace(config, num_warmup=warmup, num_samples=iterations - warmup)
