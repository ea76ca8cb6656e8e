"""Exact: the closed-form posterior of a task whose posterior is exactly Gaussian.

With the posterior's natural parameters (precision Λ, shift h) from the task's
:class:`vibench.conjugate.ConjugateGaussian` extension, the posterior is N(Λ⁻¹h, Λ⁻¹).
The approximation is that Gaussian as a full-rank family (the Cholesky factor of the
covariance), so it has a density and draws are independent and exact. It is the
calibrated baseline of SBC (its ranks are uniform by construction) and a check of the
harness (its KL and moment errors are zero up to rounding).

Its trace is one value, the ELBO of q = posterior, which equals log p(x) exactly
(KL(q ‖ p) = 0); it is computed with the Gaussian-posterior identity
log p(x) = log p(x, μ) − log N(μ; μ, Σ), from ``data``, so it is exact for any data set.
No gradient is evaluated and no random number is drawn: ``key`` is unused.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vibench.conjugate import ConjugateGaussian, log_evidence_identity
from vibench.core import Approximation, Data, LogDensity, Method, Task, gradient_free
from vibench.families import FullRank

VERSION = "1"


@dataclass(frozen=True)
class ExactConfig:
    """No settings: the posterior is computed in closed form."""


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


exact = Method(
    name="exact",
    version=VERSION,
    Config=ExactConfig,
    supports=supports,
    fit=fit,
    budget=gradient_free,
    doc=__doc__,
)
