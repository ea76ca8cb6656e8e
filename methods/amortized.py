"""Amortized ADVI: an encoder q(z_n | x_n) = N(μ_φ(x_n), L_φ(x_n) L_φ(x_n)ᵀ) trained on the ELBO.

For tasks whose latents are all local (a :class:`vibench.structure.minibatch.Subsample`
whose ``local`` sites are every latent site: one row per data point). The variational
parameters are the encoder's φ, shared by every point, not one mean and scale per point
(:mod:`vibench.families.amortized`): ``encoder=linear`` is μ(x) = xA + c with one shared
full covariance, which holds any posterior linear-Gaussian in x_n (ppca's exactly);
``encoder=mlp`` one tanh hidden layer of width ``hidden`` giving each point its mean and
full covariance. The fitted encoder applied to points it never saw approximates their
posteriors; its gap to the per-point optimum is the amortization gap.

ADVI's Monte Carlo ELBO and optimizer (:mod:`vibench.methods.advi`), on minibatches of
``batch_size`` points drawn without replacement (0: every point every step) with the
unbiased estimate (N/|S|) Σ_{i∈S} (E_q[log p(z_i, x_i)] + H(q_i))
(:func:`vibench.structure.local.local_minibatch_logp`). Cost: ``num_samples`` minibatch
gradients per step, num_samples·|S|/N full-data gradient evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, Method
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class AmortizedConfig:
    """encoder: ``linear`` (affine mean, shared full covariance) or ``mlp``; hidden: the
    MLP's hidden width; batch_size: data points per step (0: all); steps, num_samples,
    optimizer, lr, schedule, stl, init_scale: as ADVI's (init_scale: every point's initial
    standard deviation)."""

    encoder: Literal["linear", "mlp"] = "linear"
    hidden: Annotated[int, Range(1, 10**5)] = 32
    batch_size: Annotated[int, Range(0, 10**6)] = 0
    steps: Annotated[int, Range(1, 10**7)] = 2000
    num_samples: Annotated[int, Range(1, 10**5)] = 8
    optimizer: Literal["adam", "adamw", "adabelief", "rmsprop", "sgd"] = "adam"
    lr: Annotated[float, Range(0, 100, low_open=True)] = 0.02
    schedule: Literal["cosine", "constant"] = "cosine"
    stl: bool = False
    init_scale: Annotated[float, Range(0, 1000, low_open=True)] = 1.0


amortized = Method(
    name="amortized",
    version=VERSION,
    Config=AmortizedConfig,
    supports=Deferred("vibench.methods._amortized:supports"),
    fit=Deferred("vibench.methods._amortized:fit"),
    budget=Deferred("vibench.methods._amortized:budget"),
    doc=__doc__,
)
