"""The empirical family: draws (MCMC chains, exact samples, particle sets) with no density."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import numpy as np

from vibench.core import Reference

DrawKind = Literal["iid", "mcmc", "particles"]


@dataclass(frozen=True)
class Draws:
    """Empirical draws ``params["draws"]`` of shape (chains, n, dim); no density.

    ``kind`` says what the draws are, which decides their error: ``iid`` (an exact
    sampler: independent), ``mcmc`` (autocorrelated chains: their effective sample
    size must be estimated) or ``particles`` (the particle set *is* the approximation,
    as in SVGD: its moments are exact properties of q, so they carry no Monte Carlo
    error, only bias against the posterior).
    """

    kind: DrawKind = "mcmc"
    name: str = "draws"
    has_density: bool = False

    @staticmethod
    def valid_draws(params) -> np.ndarray:
        """The real draws, (chains, n_valid, dim): a run stopped by its budget sets
        ``params["num_valid"]`` and NaN-pads the draws past it."""
        draws = np.asarray(params["draws"])
        return draws if "num_valid" not in params else draws[:, : int(params["num_valid"])]

    def sample(self, params, key, n):
        """``n`` of the draws without replacement, or, when only the first
        ``num_valid`` per chain are real, ``n`` uniformly among those with replacement."""
        draws = params["draws"]
        if "num_valid" in params:
            key_chain, key_draw = jax.random.split(key)
            chain = jax.random.randint(key_chain, (n,), 0, draws.shape[0])
            index = jax.random.randint(key_draw, (n,), 0, params["num_valid"])
            return draws[chain, index]
        flat = draws.reshape(-1, draws.shape[-1])
        if n > flat.shape[0]:
            raise ValueError(f"asked for {n} draws, only {flat.shape[0]} available")
        return flat[jax.random.choice(key, flat.shape[0], (n,), replace=False)]

    def log_prob(self, params, z):
        raise TypeError("empirical draws have no density")

    def gaussian(self, params):
        return None

    def best_elbo(self, reference: Reference) -> float | None:
        """Draws have no ELBO."""
        return None
