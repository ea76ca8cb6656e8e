"""The typed task extension for multimodal targets: where the modes are and their mass."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vibench.core import Array


@dataclass(frozen=True, eq=False)
class Modes:
    """A target made of well-separated components.

    ``centers``: (M, dim) mode locations in the flat unconstrained space;
    ``weights``: (M,) the exact probability mass of each mode (sums to one);
    ``scales``: (M,) a length scale per mode: a draw belongs to the mode whose
    center is nearest in units of that mode's scale.
    """

    centers: Array
    weights: Array
    scales: Array

    def assign(self, z: Array) -> Array:
        """Index of the mode each draw of ``z`` (n, dim) belongs to."""
        dist2 = jnp.sum((z[:, None, :] - self.centers[None]) ** 2, axis=-1) / self.scales**2
        return jnp.argmin(dist2, axis=-1)

    def mass(self, z: Array) -> Array:
        """Fraction of the draws ``z`` in each mode, shape (M,)."""
        return jax.nn.one_hot(self.assign(z), self.centers.shape[0]).mean(axis=0)
