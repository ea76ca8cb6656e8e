"""Derive a flat, unconstrained :class:`LogDensity` from a task's NumPyro model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
from jax.flatten_util import ravel_pytree
from numpyro.distributions import biject_to
from numpyro.infer.util import constrain_fn, potential_energy

from vibench.core import Array, Data, LogDensity, Task


def latent_sites(model, data: Data) -> dict[str, dict]:
    """The unobserved sample sites of ``model(data)``, in execution order."""
    with numpyro.handlers.block(), numpyro.handlers.seed(rng_seed=0):
        trace = numpyro.handlers.trace(model).get_trace(data)
    return {
        name: site
        for name, site in trace.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def derive_logdensity(task: Task) -> LogDensity:
    """Flatten the task model's latent sites to one unconstrained vector.

    Continuous latents only; each site is mapped with ``biject_to(support)``, and
    ``logp`` includes the log-Jacobian, so it is the density a method must target.
    """
    sites = latent_sites(task.model, task.data)
    for name, site in sites.items():
        if site["fn"].support.is_discrete:
            raise ValueError(
                f"task {task.label}: latent site {name!r} is discrete; vibench methods "
                "need continuous latents (marginalize it in the model)"
            )
    prototype = {
        name: biject_to(site["fn"].support).inv(site["value"]) for name, site in sites.items()
    }
    flat, unravel = ravel_pytree(prototype)
    dim = int(flat.shape[0])
    model = task.model

    def logp(z: Array, data: Data) -> Array:
        return -potential_energy(model, (data,), {}, unravel(z))

    def constrain(z: Array, data: Data) -> dict[str, Array]:
        return constrain_fn(model, (data,), {}, unravel(z))

    def init(key: jax.Array) -> Array:
        return jax.random.uniform(key, (dim,), minval=-2.0, maxval=2.0, dtype=flat.dtype)

    return LogDensity(
        logp=logp,
        dim=dim,
        unflatten=unravel,
        constrain=constrain,
        init=init,
        site_shapes={name: tuple(jnp.shape(v)) for name, v in prototype.items()},
    )
