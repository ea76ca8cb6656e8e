"""The computation of :mod:`vibench.tasks.ppca` (declared there, with its parameters)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from vibench.core import Data, Task
from vibench.harness.precision import in_float32, in_float64
from vibench.structure.conjugate import BlockGaussian, block_reference
from vibench.structure.minibatch import Subsample
from vibench.tasks.ppca import VERSION, PPCAParams


def log_evidence(x: jax.Array, w: jax.Array, b: jax.Array, sigma: float) -> jax.Array:
    """Σ_n log N(x_n; b, WWᵀ + σ²I): the closed-form marginal likelihood."""
    cov = w @ w.T + sigma**2 * jnp.eye(w.shape[0])
    return dist.MultivariateNormal(b, covariance_matrix=cov).log_prob(x).sum()


def build(p: PPCAParams) -> Task:
    key_w, key_b, key_data = jax.random.split(jax.random.key(p.data_seed), 3)
    sigma = p.sigma

    def simulate_with(w: jax.Array, b: jax.Array, key: jax.Array) -> tuple[dict[str, jax.Array], Data]:
        key_z, key_x = jax.random.split(key)
        z = jax.random.normal(key_z, (p.n, p.k))
        x = z @ w.T + b + sigma * jax.random.normal(key_x, (p.n, p.d))
        return {"z": z}, {"x": x}

    def draw() -> tuple[jax.Array, jax.Array, Data]:
        """The loadings W, offsets b and data x."""
        w, b = jax.random.normal(key_w, (p.d, p.k)), jax.random.normal(key_b, (p.d,))
        return w, b, jax.jit(partial(simulate_with, w, b))(key_data)[1]

    w, b, data = in_float32(draw)  # the same numbers in both precisions
    simulate = partial(simulate_with, w, b)

    def model(data: Data) -> None:
        n = data["x"].shape[0]
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n, p.k]).to_event(2))
        numpyro.sample("x", dist.Normal(z @ w.T + b, sigma).to_event(2), obs=data["x"])

    def blocks_at(w: jax.Array, b: jax.Array) -> BlockGaussian:
        def natural_params(data: Data) -> tuple[jax.Array, jax.Array]:
            """The blocks' shared precision WᵀW/σ² + I (K, K) and shifts Wᵀ(x_n − b)/σ² (N, K)."""
            block = w.T @ w / sigma**2 + jnp.eye(p.k)
            return block, (data["x"] - b) @ w / sigma**2

        return BlockGaussian(natural_params)

    blocks = blocks_at(w, b)
    reference = block_reference(
        blocks_at(np.asarray(w, np.float64), np.asarray(b, np.float64)),  # the truth's copies
        data,
        float(in_float64(jax.jit(log_evidence), data["x"], w, b, sigma)),
        provenance="closed form: z_n|x_n ~ N(M^-1 W^T (x_n-b), s^2 M^-1); "
        "log p(x) = sum_n log N(x_n; b, WW^T + s^2 I) (Tipping & Bishop 1999)",
    )
    # the model of any rows of x is the model (it reads n from the data); z is local
    subsample = Subsample(size=p.n, per_datum=("x",), restrict=lambda index: model, local=("z",))
    return Task(
        name="ppca",
        label="ppca",
        version=VERSION,
        tags=frozenset({"exact", "conjugate", "gaussian-posterior", "local-latents"}),
        model=model,
        data=data,
        reference=reference,
        simulate=simulate,
        extensions=(blocks, subsample),
    )
