"""The computation of :mod:`vibench.methods.cavi` (declared there, with its parameters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.gaussian import MeanField
from vibench.methods.cavi import CAVIConfig
from vibench.structure.conjugate import ConjugateGaussian


def exact_elbo(logdensity: LogDensity, data: Data, precision, loc, var):
    """E_q[log p(x, z)] + H(q) for q = N(loc, diag(var)) and a quadratic log joint."""
    expected_logp = logdensity.logp(loc, data) - 0.5 * jnp.sum(jnp.diag(precision) * var)
    entropy = 0.5 * jnp.sum(jnp.log(2 * jnp.pi * jnp.e * var))
    return expected_logp + entropy


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: CAVIConfig):
    conjugate = task.extension(ConjugateGaussian)
    precision, shift = conjugate.natural_params(data)
    diag = jnp.diag(precision)
    var = 1.0 / diag

    def update(i, loc):
        off_diagonal = precision[i] @ loc - diag[i] * loc[i]
        return loc.at[i].set((shift[i] - off_diagonal) / diag[i])

    def not_done(state):
        sweep, _, change, _ = state
        return (sweep < config.max_sweeps) & (change > config.tol)

    def body(state):
        sweep, loc, _, trace = state
        new = jax.lax.fori_loop(0, loc.shape[0], update, loc)
        change = jnp.max(jnp.abs(new - loc) * jnp.sqrt(diag))
        trace = trace.at[sweep].set(exact_elbo(logdensity, data, precision, new, var))
        return sweep + 1, new, change, trace

    loc0 = logdensity.init(key)
    trace0 = jnp.full((config.max_sweeps,), jnp.nan, loc0.dtype)
    sweeps, loc, change, trace = jax.lax.while_loop(
        not_done, body, (jnp.asarray(0), loc0, jnp.asarray(jnp.inf, loc0.dtype), trace0)
    )
    return Approximation(
        params={"loc": loc, "log_scale": 0.5 * jnp.log(var)},
        trace=trace,
        grad_evals=jnp.asarray(0),
        family=MeanField(),
        steps=sweeps,
        converged=change <= config.tol,
    )


def supports(task: Task) -> tuple[bool, str]:
    if task.extension(ConjugateGaussian) is None:
        return False, "needs closed-form conditionals (a ConjugateGaussian task extension)"
    return True, ""
