"""A correlated multivariate Gaussian target (as in Dhaka et al. 2021), everything exact.

z ~ N(μ, Σ) with Σ = (1 − ρ) I + ρ 11ᵀ (equicorrelated, unit variances) and
μ_i evenly spaced in [-1, 1]. There are no observations: the posterior is the target
itself and log p(x) = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from vibench.declarations import Deferred, TaskFamily

VERSION = "1"


@dataclass(frozen=True)
class GaussianParams:
    """dim: dimension; rho: correlation between every pair of coordinates."""

    dim: int = 10
    rho: float = 0.9


gaussian = TaskFamily(
    name="gaussian", version=VERSION, Params=GaussianParams, build=Deferred("vibench.tasks._gaussian:build"), doc=__doc__
)
