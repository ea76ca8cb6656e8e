"""The computation of :mod:`vibench.tasks.linreg` (declared there, with its parameters)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from vibench.core import Data, ModelFn, Task
from vibench.harness.precision import in_float32, in_float64
from vibench.structure.conjugate import ConjugateGaussian, gaussian_reference
from vibench.structure.minibatch import MinibatchConjugate, Subsample
from vibench.structure.predictive import Predictive
from vibench.tasks.linreg import VERSION, LinRegParams

TEST_STREAM = 1
"""Folded into the data seed's key for the test split, apart from the training data's keys."""


def design(key: jax.Array, n: int, d: int, rho: float) -> jax.Array:
    """Rows i.i.d. N(0, C): unit variances, C = rho within the pairs (2j, 2j+1), else 0."""
    pair = jnp.arange(d) // 2
    corr = jnp.where(pair[:, None] == pair[None, :], rho, 0.0) + (1 - rho) * jnp.eye(d)
    return jax.random.normal(key, (n, d)) @ jnp.linalg.cholesky(corr).T


def log_evidence(x: jax.Array, y: jax.Array, sigma: float, tau: float) -> jax.Array:
    """log N(y; 0, τ² XXᵀ + σ² I)."""
    cov = tau**2 * x @ x.T + sigma**2 * jnp.eye(x.shape[0])
    return dist.MultivariateNormal(jnp.zeros(x.shape[0]), covariance_matrix=cov).log_prob(y)


def predictive(sigma: float, mean: jax.Array, cov: jax.Array) -> Predictive:
    """Test points ``{"x": (n, d), "y": (n,)}``: y* | β ~ N(x*ᵀβ, σ²), and under the posterior
    N(m, S) the exact predictive y* | y ~ N(x*ᵀm, σ² + x*ᵀ S x*)."""

    def log_lik(z: jax.Array, held_out: Data) -> jax.Array:
        return dist.Normal(held_out["x"] @ z, sigma).log_prob(held_out["y"])

    def mean_of(z: jax.Array, held_out: Data) -> jax.Array:
        return held_out["x"] @ z

    def exact_lpd(held_out: Data) -> jax.Array:
        x = held_out["x"]
        var = sigma**2 + jnp.einsum("ni,ij,nj->n", x, cov, x)
        return dist.Normal(x @ mean, jnp.sqrt(var)).log_prob(held_out["y"])

    return Predictive(log_lik, target="y", kind="regression", mean=mean_of, exact_lpd=exact_lpd)


def build(p: LinRegParams) -> Task:
    key_x, key_data = jax.random.split(jax.random.key(p.data_seed))
    key_x_test, key_y_test = jax.random.split(jax.random.fold_in(jax.random.key(p.data_seed), TEST_STREAM))
    sigma, tau = p.sigma, p.tau

    def simulate_at(x: jax.Array, key: jax.Array) -> tuple[dict[str, jax.Array], Data]:
        key_beta, key_y = jax.random.split(key)
        beta = tau * jax.random.normal(key_beta, (p.d,))
        y = x @ beta + sigma * jax.random.normal(key_y, (p.n,))
        return {"beta": beta}, {"y": y}

    def draw() -> tuple[jax.Array, Data, jax.Array, jax.Array]:
        """The design, the data, and the test split (from the same true coefficients)."""
        x = design(key_x, p.n, p.d, p.feature_rho)
        truth, data = simulate_at(x, key_data)
        x_test = design(key_x_test, p.n_test, p.d, p.feature_rho)
        y_test = x_test @ truth["beta"] + sigma * jax.random.normal(key_y_test, (p.n_test,))
        return x, data, x_test, y_test

    x, data, x_test, y_test = in_float32(jax.jit(draw))  # the same numbers in both precisions
    simulate = partial(simulate_at, x)

    def model_of(rows: jax.Array) -> ModelFn:
        """The model of the observations ``data["y"]`` at the design rows ``rows``."""

        def model(data: Data) -> None:
            beta = numpyro.sample("beta", dist.Normal(0.0, tau).expand([p.d]).to_event(1))
            numpyro.sample("y", dist.Normal(rows @ beta, sigma).to_event(1), obs=data["y"])

        return model

    model = model_of(x)

    def natural_params_at(x: jax.Array):
        def natural_params(data: Data) -> tuple[jax.Array, jax.Array]:
            precision = x.T @ x / sigma**2 + jnp.eye(p.d) / tau**2
            return precision, x.T @ data["y"] / sigma**2

        return natural_params

    def contribution(batch: Data, index: jax.Array) -> tuple[jax.Array, jax.Array]:
        rows = x[index]
        return rows.T @ rows / sigma**2, rows.T @ batch["y"] / sigma**2

    subsample = Subsample(size=p.n, per_datum=("y",), restrict=lambda index: model_of(x[index]))
    prior = (jnp.eye(p.d) / tau**2, jnp.zeros(p.d))
    conjugate = ConjugateGaussian(natural_params_at(x))
    x64 = np.asarray(x, np.float64)  # the truth's copy of the design

    @jax.jit  # one compilation instead of one per eager operation
    def exact(data: Data) -> tuple[jax.Array, jax.Array, jax.Array]:
        posterior = ConjugateGaussian(natural_params_at(x64)).posterior(data)
        return *posterior, log_evidence(x64, data["y"], sigma, tau)

    mean, cov, evidence = in_float64(exact, data)  # the truth, in float64
    reference = gaussian_reference(
        mean,
        cov,
        evidence,
        provenance="closed form: beta|y ~ N(P^-1 X^T y/s^2, P^-1), P = X^T X/s^2 + I/t^2; "
        "y ~ N(0, t^2 XX^T + s^2 I)",
    )
    return Task(
        name="linreg",
        label="linreg",
        version=VERSION,
        tags=frozenset({"exact", "conjugate", "gaussian-posterior", "correlated"}),
        model=model,
        data=data,
        reference=reference,
        simulate=simulate,
        held_out={"x": x_test, "y": y_test},
        extensions=(
            conjugate,
            subsample,
            MinibatchConjugate(prior, contribution),
            predictive(sigma, mean, cov),
        ),
    )
