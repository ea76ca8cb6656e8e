"""The computation of :mod:`vibench.methods.gmm_exact` (declared there, with its parameters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.draws import Draws
from vibench.methods.gmm_exact import GMMExactConfig
from vibench.structure.mixture import ConjugateMixture
from vibench.tasks._gmm import EXACT_LIMIT, assignment_log_joints, exact_draws


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: GMMExactConfig) -> Approximation:
    mix = task.extension(ConjugateMixture)
    x = data[mix.observed]
    log_joints = assignment_log_joints(mix, x)
    log_evidence = logsumexp(log_joints)
    cdf = jnp.cumsum(jnp.exp(log_joints - log_evidence))
    draws = exact_draws(mix, x, cdf / cdf[-1], key, config.draws)
    return Approximation(
        params={"draws": draws[None]},
        trace=log_evidence[None],
        grad_evals=jnp.asarray(0),
        family=Draws(kind="iid", name="exact-enumeration"),
        objective="log_evidence",
    )


def supports(task: Task) -> tuple[bool, str]:
    mix = task.extension(ConjugateMixture)
    if mix is None:
        return False, "needs a conjugate Gaussian mixture (a ConjugateMixture task extension)"
    n = task.data[mix.observed].shape[0]
    if mix.k**n > EXACT_LIMIT:
        return False, f"enumerates k^n assignments, at most {EXACT_LIMIT}; this task has {mix.k}^{n}"
    return True, ""
