"""SBC ranks: posterior draws for a batch of replicates, and the rank of each true
parameter value among them (Talts et al. 2018, Algorithm 1).

A density family gives L independent draws from q; i.i.d. draws and particle sets
give L of their draws without replacement (a particle set is q itself); MCMC draws
are thinned by their effective sample size to L nearly independent ones first, since
autocorrelated draws
make even an exact sampler's ranks non-uniform. Ranks are taken on the model's
constrained sites (``logdensity.constrain``), per scalar parameter.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from vibench.core import Approximation, LogDensity
from vibench.numerics.arviz import az


def param_names(shapes: dict[str, tuple[int, ...]]) -> tuple[str, ...]:
    """Scalar parameter names in flat order: ``sigma``, ``beta[0]``, ``z[4,1]``."""
    names: list[str] = []
    for site, shape in shapes.items():
        if shape:
            names += [f"{site}[{','.join(map(str, i))}]" for i in np.ndindex(*shape)]
        else:
            names.append(site)
    return tuple(names)


def _flatten(values: dict, sites: tuple[str, ...], batch_dims: int) -> jax.Array:
    return jnp.concatenate(
        [jnp.reshape(values[s], jnp.shape(values[s])[:batch_dims] + (-1,)) for s in sites], axis=-1
    )


def rank_counts(logdensity: LogDensity, draws: jax.Array, data, truth: dict):
    """For one replicate: (#draws < θ, #draws == θ, all finite) per scalar parameter.

    ``draws`` (L, dim) are unconstrained; they are compared with ``truth`` (by site,
    constrained) after ``logdensity.constrain``.
    """
    sites = tuple(logdensity.site_shapes)
    constrained = jax.vmap(logdensity.constrain, (0, None))(draws, data)
    sample, theta = _flatten(constrained, sites, 1), _flatten(truth, sites, 0)
    finite = jnp.all(jnp.isfinite(sample)) & jnp.all(jnp.isfinite(theta))
    return jnp.sum(sample < theta, axis=0), jnp.sum(sample == theta, axis=0), finite


def break_ties(less: np.ndarray, equal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ranks with ties broken uniformly at random: less + U{0, ..., equal}."""
    return less + np.floor(rng.random(less.shape) * (equal + 1)).astype(np.int64)


def min_ess(draws: np.ndarray) -> float:
    """The smallest bulk or tail ESS over dimensions of draws (chains, n, dim)."""
    dataset = az.convert_to_dataset({"z": draws})
    bulk = az.ess(dataset, method="bulk")["z"].values
    tail = az.ess(dataset, method="tail")["z"].values
    return float(np.min(np.minimum(bulk, tail)))


def thin(draws: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """``n_draws`` nearly independent draws (n_draws, dim) from MCMC draws (chains, n, dim).

    Each chain is thinned with stride ⌈total / ESS⌉ (Talts et al. 2018, Sec. 5.1), which
    leaves about ESS draws; ``n_draws`` of them are chosen at random. Raises when fewer
    than ``n_draws`` are left: autocorrelated draws would make the ranks non-uniform.
    """
    ess = min_ess(draws)
    stride = max(1, math.ceil(draws.shape[0] * draws.shape[1] / max(ess, 1.0)))
    pool = draws[:, ::stride].reshape(-1, draws.shape[-1])
    if pool.shape[0] < n_draws:
        raise ValueError(
            f"MCMC effective sample size {ess:.0f} leaves {pool.shape[0]} nearly independent "
            f"draws, fewer than the {n_draws} SBC draws asked for: run longer chains or ask "
            "for fewer draws"
        )
    return pool[rng.choice(pool.shape[0], n_draws, replace=False)]


@partial(jax.jit, static_argnums=2)
def _sample_batch(approx: Approximation, keys: jax.Array, n: int) -> jax.Array:
    return jax.vmap(lambda a, k: a.sample(k, n))(approx, keys)


def posterior_draws(approx: Approximation, keys, n_draws: int, rng) -> jax.Array:
    """(C, L, dim) draws from a batch of C approximations."""
    family = approx.family
    if family.has_density or family.kind != "mcmc":
        return _sample_batch(approx, keys, n_draws)
    batch = approx.params["draws"].shape[0]
    replicates = (
        family.valid_draws(jax.tree_util.tree_map(lambda leaf: leaf[c], approx.params))
        for c in range(batch)
    )
    return jnp.asarray(np.stack([thin(c, n_draws, rng) for c in replicates]))
