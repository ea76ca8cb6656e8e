"""A correlated multivariate Gaussian target (as in Dhaka et al. 2021), everything exact.

z ~ N(μ, Σ) with Σ = (1 − ρ) I + ρ 11ᵀ (equicorrelated, unit variances) and
μ_i evenly spaced in [-1, 1]. There are no observations: the posterior is the target
itself and log p(x) = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from vibench.declarations import Deferred, TaskFamily
from vibench.spec import Range

VERSION = "1"


def check_equicorrelation(dim: int, rho: float) -> None:
    """Σ = (1 − ρ) I + ρ 11ᵀ is positive definite only for −1/(dim − 1) < ρ < 1."""
    lower = -1.0 / (dim - 1) if dim > 1 else -1.0
    if not lower < rho < 1:
        raise ValueError(
            f"parameter rho must satisfy {lower:g} < rho < 1 at dim={dim} (positive definite); got {rho!r}"
        )


@dataclass(frozen=True)
class GaussianParams:
    """dim: dimension; rho: correlation between every pair of coordinates."""

    dim: Annotated[int, Range(1, 1000)] = 10
    rho: Annotated[float, Range(-1, 1, low_open=True, high_open=True)] = 0.9

    def check(self) -> None:
        check_equicorrelation(self.dim, self.rho)


gaussian = TaskFamily(
    name="gaussian", version=VERSION, Params=GaussianParams, build=Deferred("vibench.tasks._gaussian:build"), doc=__doc__
)
