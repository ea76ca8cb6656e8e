"""The computation of :mod:`vibench.methods.exact` (declared there, with its parameters).

On a :class:`BlockGaussian` (independent K-dim blocks: local latents) the posterior is
returned block by block, as a :class:`vibench.families.gaussian.BlockDiagonal` family:
O(N·K²) memory, whatever N.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.gaussian import BlockDiagonal, FullRank
from vibench.methods.exact import ExactConfig
from vibench.structure.conjugate import (
    BlockGaussian,
    BlockPosterior,
    ConjugateGaussian,
    log_evidence_identity,
)


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: ExactConfig):
    blocks = task.extension(BlockGaussian)
    if blocks is not None:
        mean, chol = blocks.posterior(data)
        elbo = BlockPosterior(mean, chol).log_evidence_identity(logdensity.logp(mean.reshape(-1), data))
        diagonal = jnp.diagonal(chol, axis1=-2, axis2=-1)
        params = {"loc": mean, "log_diag": jnp.log(diagonal), "lower": chol}
        family = BlockDiagonal(block=mean.shape[-1])
    else:
        mean, cov = task.extension(ConjugateGaussian).posterior(data)
        chol = jnp.linalg.cholesky(cov)
        elbo = log_evidence_identity(logdensity.logp(mean, data), cov)
        params = {"loc": mean, "log_diag": jnp.log(jnp.diag(chol)), "lower": chol}
        family = FullRank()
    return Approximation(params=params, trace=elbo[None], grad_evals=jnp.asarray(0), family=family)


def supports(task: Task) -> tuple[bool, str]:
    if task.extension(ConjugateGaussian) is None and task.extension(BlockGaussian) is None:
        return False, "needs an exactly Gaussian posterior (a ConjugateGaussian or BlockGaussian task extension)"
    return True, ""
