"""IWAE: Gaussian VI on the importance-weighted bound (Burda, Grosse & Salakhutdinov 2016).

Maximizes L_K = E[log (1/K) Σ_k w_k], w_k = p(x, z_k) / q(z_k), z_1..K ~ q i.i.d.:
a lower bound on log p(x) that is the ELBO at K = 1 and rises to log p(x) as K grows
(for K large, log p(x) − L_K ≈ χ²(p ‖ q) / (2K), with p the posterior; Maddison et
al. 2017, Domke & Sheldon 2018). Each step averages
``num_estimates`` independent estimates of L_K and takes their pathwise gradient;
an optax optimizer runs under ``lax.scan`` (:func:`vibench.methods.advi.optimize`).

``dreg=True`` uses the doubly-reparameterized gradient (DReG; Tucker, Lawson, Gu &
Maddison 2019): Σ_k w̃_k² ∂log w_k/∂z_k · ∂z_k/∂φ with normalized weights
w̃_k = w_k / Σ_j w_j, log q's parameters held fixed (the family's ``stick=True``).
It has the expectation of the standard gradient without its score-function term, the
term that makes the standard estimator's signal-to-noise ratio for q's parameters fall
like 1/√K (Rainforth et al. 2018); DReG's rises like √K. K = 1 with ``dreg=True`` is
ADVI with sticking-the-landing gradients from ``num_estimates`` draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, Method
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class IWAEConfig:
    """family: Gaussian family; rank: factor rank (lowrank only); k: importance samples
    per bound estimate (K); num_estimates: bound estimates averaged per step; dreg:
    doubly-reparameterized gradients; steps, optimizer, lr, schedule, init_scale: as in
    ADVI."""

    family: Literal["meanfield", "fullrank", "lowrank"] = "meanfield"
    rank: Annotated[int, Range(1, 1000)] = 2
    k: Annotated[int, Range(1, 10**5)] = 8
    num_estimates: Annotated[int, Range(1, 10**4)] = 1
    dreg: bool = False
    steps: Annotated[int, Range(1, 10**7)] = 2000
    optimizer: Literal["adam", "adamw", "adabelief", "rmsprop", "sgd"] = "adam"
    lr: Annotated[float, Range(0, 100, low_open=True)] = 0.02
    schedule: Literal["cosine", "constant"] = "cosine"
    init_scale: Annotated[float, Range(0, 1000, low_open=True)] = 1.0

    def check(self) -> None:
        """At most 10^6 draws of q per step (k · num_estimates, held in memory at once)."""
        if self.k * self.num_estimates > 10**6:
            raise ValueError(
                f"parameters k, num_estimates must satisfy k * num_estimates <= 10^6 (draws per step); "
                f"got {self.k * self.num_estimates}"
            )


iwae = Method(
    name="iwae",
    version=VERSION,
    Config=IWAEConfig,
    fit=Deferred("vibench.methods._iwae:fit"),
    budget=Deferred("vibench.methods._iwae:budget"),
    doc=__doc__,
)
