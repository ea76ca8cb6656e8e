"""Probabilistic PCA with known loadings: an exactly Gaussian posterior over local latents.

x_n = W z_n + b + ε_n, z_n ~ N(0, I_K), ε_n ~ N(0, σ² I_D), with W, b, σ known
(Tipping & Bishop 1999). The posterior factorizes over n:
z_n | x_n ~ N(M⁻¹Wᵀ(x_n − b), σ² M⁻¹), M = WᵀW + σ² I_K, and
log p(x) = Σ_n log N(x_n; b, WWᵀ + σ² I_D).
"""

from __future__ import annotations

from dataclasses import dataclass

from vibench.declarations import Deferred, TaskFamily

VERSION = "1"


@dataclass(frozen=True)
class PPCAParams:
    """n: data points; d: observed dimension; k: latent dimension; sigma: noise sd."""

    n: int = 100
    d: int = 5
    k: int = 2
    sigma: float = 0.5
    data_seed: int = 0


ppca = TaskFamily(name="ppca", version=VERSION, Params=PPCAParams, build=Deferred("vibench.tasks._ppca:build"), doc=__doc__)
