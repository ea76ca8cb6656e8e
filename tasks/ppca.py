"""Probabilistic PCA with known loadings: an exactly Gaussian posterior over local latents.

x_n = W z_n + b + ε_n, z_n ~ N(0, I_K), ε_n ~ N(0, σ² I_D), with W, b, σ known
(Tipping & Bishop 1999). The posterior factorizes over n:
z_n | x_n ~ N(M⁻¹Wᵀ(x_n − b), σ² M⁻¹), M = WᵀW + σ² I_K, and
log p(x) = Σ_n log N(x_n; b, WWᵀ + σ² I_D).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from vibench.declarations import Deferred, TaskFamily
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class PPCAParams:
    """n: data points; d: observed dimension; k: latent dimension (at most d);
    sigma: noise sd; data_seed: seed of W, b and the data."""

    n: Annotated[int, Range(1, 10**5)] = 100
    d: Annotated[int, Range(1, 1000)] = 5
    k: Annotated[int, Range(1, 1000)] = 2
    sigma: Annotated[float, Range(0, 10**6, low_open=True)] = 0.5
    data_seed: Annotated[int, Range(0, 2**32 - 1)] = 0

    def check(self) -> None:
        """At most as many latent as observed dimensions, and at most 10^8 data values."""
        if self.k > self.d:
            raise ValueError(f"parameter k must satisfy k <= d = {self.d}; got {self.k}")
        if self.n * self.d > 10**8:
            raise ValueError(f"parameters n, d must satisfy n * d <= 10^8 (data values); got {self.n * self.d}")


ppca = TaskFamily(name="ppca", version=VERSION, Params=PPCAParams, build=Deferred("vibench.tasks._ppca:build"), doc=__doc__)
