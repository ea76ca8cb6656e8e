"""The computation of :mod:`vibench.tasks.gaussian` (declared there, with its parameters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from vibench.core import Data, Task
from vibench.structure.conjugate import ConjugateGaussian, gaussian_reference
from vibench.tasks.gaussian import VERSION, GaussianParams


def build(p: GaussianParams) -> Task:
    # float64 NumPy: the exact parameters, taken in the run's precision by the model
    mean = np.linspace(-1.0, 1.0, p.dim) if p.dim > 1 else np.zeros(1)
    cov = (1 - p.rho) * np.eye(p.dim) + p.rho * np.ones((p.dim, p.dim))
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
