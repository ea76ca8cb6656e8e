"""ADVI: reparameterized Gaussian variational inference (Kucukelbir et al. 2017).

Maximizes the ELBO E_q[log p(x, z)] + H(q) with pathwise gradients from
``num_samples`` draws per step and the closed-form entropy (as Stan's ADVI), an
optax optimizer, and the whole loop under ``lax.scan``. ``stl=True`` uses the
sticking-the-landing estimator (Roeder et al. 2017) instead: E_q[log p − log q]
with q's parameters held fixed inside log q, so the gradient flows through the
draws only and its variance vanishes where q equals the posterior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, Method
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class ADVIConfig:
    """family: Gaussian family; rank: factor rank (lowrank only); steps: optimizer steps;
    num_samples: Monte Carlo draws per gradient; optimizer: an optax optimizer name;
    lr: initial learning rate; schedule: ``cosine`` decays it to 1% over the run
    (Robbins–Monro-style annealing), ``constant`` keeps it; stl: sticking-the-landing
    gradients; init_scale: initial standard deviation (Stan: 1)."""

    family: Literal["meanfield", "fullrank", "lowrank"] = "meanfield"
    rank: Annotated[int, Range(1, 1000)] = 2
    steps: Annotated[int, Range(1, 10**7)] = 2000
    num_samples: Annotated[int, Range(1, 10**5)] = 8
    optimizer: Literal["adam", "adamw", "adabelief", "rmsprop", "sgd"] = "adam"
    lr: Annotated[float, Range(0, 100, low_open=True)] = 0.02
    schedule: Literal["cosine", "constant"] = "cosine"
    stl: bool = False
    init_scale: Annotated[float, Range(0, 1000, low_open=True)] = 1.0


advi = Method(
    name="advi",
    version=VERSION,
    Config=ADVIConfig,
    fit=Deferred("vibench.methods._advi:fit"),
    budget=Deferred("vibench.methods._advi:budget"),
    doc=__doc__,
)
