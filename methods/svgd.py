"""SVGD: Stein variational gradient descent (Liu & Wang 2016).

``num_particles`` particles z₁…zₙ, started at ``logdensity.init`` draws, move along
the kernelized Stein direction, the steepest descent of KL(q ‖ p) in the unit ball
of the RKHS of k:

    φ(zᵢ) = (1/n) Σⱼ [k(zⱼ, zᵢ) ∇log p(x, zⱼ) + ∇_{zⱼ} k(zⱼ, zᵢ)],

with the RBF kernel k(z, z') = exp(−‖z − z'‖² / h) and the paper's median
heuristic h = med² / log(n + 1), med the median distance between distinct
particles, recomputed every step. The particles take optax steps along φ, under
``lax.scan``; Liu & Wang's "AdaGrad with momentum" is ``optimizer=rmsprop``
(decay 0.9), the default is Adam with a cosine-decayed rate (its steps shrink with
the rate, so the particles settle instead of jittering about the fixed point).
Adaptive optimizers keep the fixed points (φ = 0) but scale each coordinate of each
particle's step apart, bending the particles' paths away from the SVGD flow, which
changes where they settle: on the 4-mode ``mixture`` Adam's particles reach 2.9 of
the 4 modes on average over 8 seeds, plain steps along φ (``optimizer=sgd``,
``lr=0.5``) 3.9. Plain steps need a rate matched to the target's curvature (the
stiffest direction bounds it), so the scale-free Adam stays the default.

The particles are the approximation (no density). They are neither independent
nor a Markov chain: interacting, deterministic given their start, and biased at
finite n (e.g. the variance collapses in high dimension; Ba et al. 2022), so no
Monte Carlo standard error describes their error: they are ``Draws(kind="particles")``,
whose moments and mode masses are q's own and carry standard error 0. The trace is the kernelized Stein
discrepancy of the particles, sqrt of the V-statistic (1/n²) Σᵢⱼ u(zᵢ, zⱼ) with the
step's kernel, which equals ‖φ‖ in the RKHS (objective ``ksd``; zero at a fixed
point). Each step evaluates one gradient per particle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, Method
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class SVGDConfig:
    """num_particles: particles; steps: update steps; optimizer: an optax optimizer
    name; lr: initial learning rate; schedule: ``cosine`` decays it to 1% over the run,
    ``constant`` keeps it."""

    num_particles: Annotated[int, Range(2, 5000)] = 100
    steps: Annotated[int, Range(1, 10**7)] = 1000
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr: Annotated[float, Range(0, 100, low_open=True)] = 0.05
    schedule: Literal["cosine", "constant"] = "cosine"


svgd = Method(
    name="svgd",
    version=VERSION,
    Config=SVGDConfig,
    fit=Deferred("vibench.methods._svgd:fit"),
    budget=Deferred("vibench.methods._svgd:budget"),
    doc=__doc__,
)
