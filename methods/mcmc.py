"""MCMC baselines on the flat log density: NumPyro's HMC (Neal 2011) and NUTS
(Hoffman & Gelman 2014).

Several chains run in lockstep, vectorized (``vmap``), each with NumPyro's window
adaptation of the step size (dual averaging to ``target_accept``) and the mass
matrix during warm-up; the draws after warm-up are the approximation (no density).
The functional ``numpyro.infer.hmc.hmc`` kernel is driven by ``lax.scan``, so the
whole run is one compiled, vmappable function.

- ``hmc``: a fixed number of leapfrog steps per iteration, so its cost is known in
  advance: chains × (1 + iterations × num_steps) gradient evaluations. (The
  trajectory length, num_steps × the adapted step size, follows the adaptation;
  fixing the length instead would make the cost depend on it.)
- ``nuts``: trajectories end at a U-turn, so the cost is random. ``max_grad_evals``
  caps it honestly: an iteration runs only if, at its worst (2^max_tree_depth − 1
  leapfrog steps per chain), it keeps the total within the cap; once one cannot,
  the chains stop. Shapes stay static: the draws of iterations that did not run are
  NaN and ``params["num_valid"]`` says how many leading draws per chain are real.

Gradient evaluations are counted from the kernel: one per leapfrog step, plus one
per chain at the start (NumPyro's step-size heuristic is off, so nothing else
evaluates a gradient). ``diagnostics`` report, over the valid draws, the smallest
bulk ESS and the largest rank-normalized split R-hat across coordinates
(:mod:`vibench.mcmc_diagnostics`), the number of divergent transitions and the mean
acceptance probability after warm-up. The trace is the mean over chains of log p(x, z)
per iteration, warm-up included (objective ``log_joint``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
from numpyro.infer.hmc import hmc as numpyro_hmc

from vibench.core import Approximation, Data, LogDensity, Method, Task, any_task
from vibench.families import Draws
from vibench.mcmc_diagnostics import worst_case

VERSION = "2"


@dataclass(frozen=True)
class NUTSConfig:
    """num_warmup / num_samples: iterations per chain; num_chains: vectorized chains;
    target_accept: dual-averaging target; max_tree_depth: NUTS tree depth cap;
    dense_mass: adapt a dense (not diagonal) mass matrix; max_grad_evals: cap on
    gradient evaluations over all chains (0: none)."""

    num_warmup: int = 500
    num_samples: int = 500
    num_chains: int = 4
    target_accept: float = 0.8
    max_tree_depth: int = 10
    dense_mass: bool = False
    max_grad_evals: int = 0


@dataclass(frozen=True)
class HMCConfig:
    """num_warmup / num_samples: iterations per chain; num_chains: vectorized chains;
    num_steps: leapfrog steps per iteration; target_accept: dual-averaging target;
    dense_mass: adapt a dense (not diagonal) mass matrix."""

    num_warmup: int = 500
    num_samples: int = 500
    num_chains: int = 4
    num_steps: int = 16
    target_accept: float = 0.8
    dense_mass: bool = False


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


nuts = Method(
    name="nuts",
    version=VERSION,
    Config=NUTSConfig,
    supports=any_task,
    fit=fit_nuts,
    budget=budget_nuts,
    doc="NUTS (Hoffman & Gelman 2014): NumPyro's kernel, vectorized chains, capped cost.\n\n"
    + __doc__,
)

hmc = Method(
    name="hmc",
    version=VERSION,
    Config=HMCConfig,
    supports=any_task,
    fit=fit_hmc,
    budget=budget_hmc,
    doc="HMC (Neal 2011): NumPyro's kernel, fixed leapfrog steps, vectorized chains.\n\n"
    + __doc__,
)
