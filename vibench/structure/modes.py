"""The typed task extension for multimodal targets: where the modes are and their mass."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from scipy.stats import chi2

from vibench.core import Array

OFF_MODE = -1
MODE_TAIL = 1e-3


@dataclass(frozen=True, eq=False)
class Modes:
    """A target made of well-separated components.

    ``centers``: (M, dim) mode locations in the flat unconstrained space;
    ``weights``: (M,) the exact probability mass of each mode (sums to one);
    ``scales``: (M,) a length scale per mode (the component's sd).

    A draw belongs to the mode whose center is nearest in units of that mode's scale,
    and only if it lies within ``radius`` of it: the distance that holds all but
    ``MODE_TAIL`` of a Gaussian component's mass. Draws farther from every mode are
    ``OFF_MODE``, so a broad q that smears its mass between the modes is not credited
    with covering them.
    """

    centers: Array
    weights: Array
    scales: Array

    @property
    def radius(self) -> float:
        return float(chi2.ppf(1 - MODE_TAIL, self.centers.shape[1])) ** 0.5

    def assign(self, z: Array) -> Array:
        """Index of the mode each draw of ``z`` (n, dim) belongs to, or ``OFF_MODE``."""
        dist2 = jnp.sum((z[:, None, :] - self.centers[None]) ** 2, axis=-1) / self.scales**2
        nearest = jnp.argmin(dist2, axis=-1)
        within = jnp.min(dist2, axis=-1) <= self.radius**2
        return jnp.where(within, nearest, OFF_MODE)

    def mass(self, z: Array) -> Array:
        """Fraction of the draws ``z`` in each mode, shape (M,); the rest is off-mode."""
        return jax.nn.one_hot(self.assign(z), self.centers.shape[0]).mean(axis=0)
