"""A correlated multivariate Gaussian target (as in Dhaka et al. 2021), everything exact.

z ~ N(μ, Σ) with Σ = (1 − ρ) I + ρ 11ᵀ (equicorrelated, unit variances) and
μ_i evenly spaced in [-1, 1]. There are no observations: the posterior is the target
itself and log p(x) = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from vibench.conjugate import ConjugateGaussian, gaussian_reference
from vibench.core import Data, Task, TaskFamily

VERSION = "1"


@dataclass(frozen=True)
class GaussianParams:
    """dim: dimension; rho: correlation between every pair of coordinates."""

    dim: int = 10
    rho: float = 0.9


def build(p: GaussianParams) -> Task:
    lower = -1.0 / (p.dim - 1) if p.dim > 1 else -1.0
    if p.dim < 1 or not lower < p.rho < 1:
        raise ValueError(f"gaussian needs dim >= 1 and {lower:g} < rho < 1 (positive definite)")
    mean = jnp.linspace(-1.0, 1.0, p.dim) if p.dim > 1 else jnp.zeros(1)
    cov = (1 - p.rho) * jnp.eye(p.dim) + p.rho * jnp.ones((p.dim, p.dim))
    target = dist.MultivariateNormal(mean, covariance_matrix=cov)

    def model(data: Data) -> None:
        numpyro.sample("z", target)

    def simulate(key: jax.Array) -> tuple[dict[str, jax.Array], Data]:
        return {"z": target.sample(key)}, {}

    def natural_params(data: Data) -> tuple[jax.Array, jax.Array]:
        precision = jnp.linalg.inv(cov)
        return precision, precision @ mean

    reference = gaussian_reference(
        mean, cov, 0.0, provenance="closed form: the target is a normalized Gaussian"
    )
    return Task(
        name="gaussian",
        label="gaussian",
        version=VERSION,
        tags=frozenset({"exact", "gaussian-posterior", "correlated", "synthetic"}),
        model=model,
        data={},
        reference=reference,
        simulate=simulate,
        extensions=(ConjugateGaussian(natural_params),),
    )


gaussian = TaskFamily(
    name="gaussian", version=VERSION, Params=GaussianParams, build=build, doc=__doc__
)
