"""Conjugate Bayesian linear regression with known noise: an exact, strongly correlated posterior.

y = Xβ + ε, β ~ N(0, τ² I_D), ε ~ N(0, σ² I_N). The posterior is N(P⁻¹Xᵀy/σ², P⁻¹)
with P = XᵀX/σ² + I/τ², and y ~ N(0, τ² XXᵀ + σ² I) gives log p(x) exactly.
The design's features come in pairs (2j, 2j+1) correlated with ``feature_rho`` and
independent across pairs, so each pair of coefficients is strongly anti-correlated a
posteriori (about −feature_rho · n/(n + σ²/τ²)) and mean-field under-dispersion is
visible. (Correlated features alone do not do this: with AR(1) features, for one, the
posterior correlations, from the inverse of XᵀX, stay near −ρ/(1+ρ²) ≈ −0.5.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from vibench.declarations import Deferred, TaskFamily
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class LinRegParams:
    """n: observations; d: coefficients; feature_rho: correlation within each pair of
    features; sigma: noise sd; tau: prior sd of the coefficients; data_seed: seed of
    the design and the data; n_test: held-out
    points, from the same design and coefficients, independent of the n observations."""

    n: Annotated[int, Range(1, 10**6)] = 50
    d: Annotated[int, Range(1, 1000)] = 6
    feature_rho: Annotated[float, Range(-1, 1, low_open=True, high_open=True)] = 0.95
    sigma: Annotated[float, Range(0, 10**6, low_open=True)] = 1.0
    tau: Annotated[float, Range(0, 10**6, low_open=True)] = 1.0
    data_seed: Annotated[int, Range(0, 2**32 - 1)] = 0
    n_test: Annotated[int, Range(1, 10**6)] = 100

    def check(self) -> None:
        """At most 10^8 entries in the training and test designs together."""
        if (self.n + self.n_test) * self.d > 10**8:
            raise ValueError(
                f"parameters n, n_test, d must satisfy (n + n_test) * d <= 10^8 (design entries); "
                f"got {(self.n + self.n_test) * self.d}"
            )


linreg = TaskFamily(name="linreg", version=VERSION, Params=LinRegParams, build=Deferred("vibench.tasks._linreg:build"), doc=__doc__)
