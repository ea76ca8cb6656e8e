"""CAVI: closed-form coordinate ascent for tasks with an exactly Gaussian posterior.

With the posterior's natural parameters (precision Λ, shift h) from the task's
:class:`vibench.conjugate.ConjugateGaussian` extension, the optimal factor of
coordinate i given the others is q_i = N((h_i − Σ_{j≠i} Λ_ij m_j) / Λ_ii, 1/Λ_ii)
(Bishop 2006, §10.1.2). Each sweep updates every coordinate in turn (Gauss–Seidel
on the means; the variances are exact after the first update), until no mean moves
by more than ``tol`` posterior-conditional standard deviations, or ``max_sweeps``.
The ELBO is exact (the log joint is quadratic), so the trace is the true objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vibench.conjugate import ConjugateGaussian
from vibench.core import Approximation, Data, LogDensity, Method, Task, gradient_free
from vibench.families import MeanField

VERSION = "1"


@dataclass(frozen=True)
class CAVIConfig:
    """max_sweeps: most full passes over the coordinates; tol: stop when the largest
    change of a mean in a sweep is below tol × its factor's standard deviation."""

    max_sweeps: int = 1000
    tol: float = 1e-5


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


cavi = Method(
    name="cavi",
    version=VERSION,
    Config=CAVIConfig,
    supports=supports,
    fit=fit,
    budget=gradient_free,
    doc=__doc__,
)
