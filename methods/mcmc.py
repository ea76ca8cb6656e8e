"""MCMC baselines: NumPyro's NUTS (Hoffman & Gelman 2014) on the flat log density.

Several chains run vectorized (``vmap``), each with NumPyro's window adaptation of
step size and mass matrix during warm-up; the draws are the approximation (no
density). The functional ``numpyro.infer.hmc.hmc`` kernel is driven by ``lax.scan``,
so the whole run is one compiled, vmappable function.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from numpyro.infer.hmc import hmc

from vibench.core import Approximation, Data, LogDensity, Method, Task
from vibench.families import Draws

VERSION = "1"


@dataclass(frozen=True)
class NUTSConfig:
    """num_warmup / num_samples: iterations per chain; num_chains: vectorized chains;
    target_accept: dual-averaging target; max_tree_depth: NUTS tree depth cap;
    dense_mass: adapt a dense (not diagonal) mass matrix."""

    num_warmup: int = 500
    num_samples: int = 500
    num_chains: int = 4
    target_accept: float = 0.8
    max_tree_depth: int = 10
    dense_mass: bool = False


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: NUTSConfig):
    def potential(z):
        return -logdensity.logp(z, data)

    init_kernel, sample_kernel = hmc(potential_fn=potential, algo="NUTS")

    def chain(key):
        key_init, key_kernel = jax.random.split(key)
        state = init_kernel(
            logdensity.init(key_init),
            config.num_warmup,
            target_accept_prob=config.target_accept,
            max_tree_depth=config.max_tree_depth,
            dense_mass=config.dense_mass,
            rng_key=key_kernel,
        )

        def step(state, _):
            state = sample_kernel(state)
            return state, (state.z, -state.potential_energy, state.num_steps)

        _, (z, log_joint, num_steps) = jax.lax.scan(
            step, state, None, length=config.num_warmup + config.num_samples
        )
        return z[config.num_warmup :], log_joint, jnp.sum(num_steps)

    draws, log_joint, num_steps = jax.vmap(chain)(jax.random.split(key, config.num_chains))
    return Approximation(
        params={"draws": draws},
        trace=jnp.mean(log_joint, axis=0),
        grad_evals=jnp.sum(num_steps),
        family=Draws(independent=False),
        objective="log_joint",
    )


def supports(task: Task) -> tuple[bool, str]:
    return True, ""


nuts = Method(
    name="nuts",
    version=VERSION,
    Config=NUTSConfig,
    supports=supports,
    fit=fit,
    doc=__doc__,
)
