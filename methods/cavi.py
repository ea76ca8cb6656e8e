"""CAVI: closed-form coordinate ascent for tasks with an exactly Gaussian posterior.

With the posterior's natural parameters (precision Λ, shift h) from the task's
:class:`vibench.conjugate.ConjugateGaussian` extension, the optimal factor of
coordinate i given the others is q_i = N((h_i − Σ_{j≠i} Λ_ij m_j) / Λ_ii, 1/Λ_ii)
(Bishop 2006, §10.1.2). Each sweep updates every coordinate in turn; the ELBO is
exact (the log joint is quadratic), so the trace is the true objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vibench.conjugate import ConjugateGaussian
from vibench.core import Approximation, Data, LogDensity, Method, Task
from vibench.families import MeanField

VERSION = "1"


@dataclass(frozen=True)
class CAVIConfig:
    """sweeps: full passes over the coordinates."""

    sweeps: int = 50


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

    def sweep(loc, _):
        loc = jax.lax.fori_loop(0, loc.shape[0], update, loc)
        return loc, exact_elbo(logdensity, data, precision, loc, var)

    loc0 = logdensity.init(key)
    loc, trace = jax.lax.scan(sweep, loc0, None, length=config.sweeps)
    return Approximation(
        params={"loc": loc, "log_scale": 0.5 * jnp.log(var)},
        trace=trace,
        grad_evals=jnp.asarray(0),
        family=MeanField(),
    )


def supports(task: Task) -> tuple[bool, str]:
    if task.extension(ConjugateGaussian) is None:
        return False, "needs closed-form conditionals (a ConjugateGaussian task extension)"
    return True, ""


cavi = Method(
    name="cavi", version=VERSION, Config=CAVIConfig, supports=supports, fit=fit, doc=__doc__
)
