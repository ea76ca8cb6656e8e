"""The computation of :mod:`vibench.methods.exact` (declared there, with its parameters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.gaussian import FullRank
from vibench.methods.exact import ExactConfig
from vibench.structure.conjugate import ConjugateGaussian, log_evidence_identity


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: ExactConfig):
    mean, cov = task.extension(ConjugateGaussian).posterior(data)
    chol = jnp.linalg.cholesky(cov)
    elbo = log_evidence_identity(logdensity.logp(mean, data), cov)
    return Approximation(
        params={"loc": mean, "log_diag": jnp.log(jnp.diag(chol)), "lower": chol},
        trace=elbo[None],
        grad_evals=jnp.asarray(0),
        family=FullRank(),
    )


def supports(task: Task) -> tuple[bool, str]:
    if task.extension(ConjugateGaussian) is None:
        return False, "needs an exactly Gaussian posterior (a ConjugateGaussian task extension)"
    return True, ""
