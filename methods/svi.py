"""SVI: stochastic variational inference on minibatches of the data.

For tasks whose N data points can be subsampled (a :class:`vibench.minibatch.Subsample`
extension: conditionally independent given global latents), each step sees a
minibatch S of ``batch_size`` points, drawn uniformly without replacement, and
rescales its likelihood terms by N/|S|, so every step's estimate is unbiased.

- ``mode=reparam``: doubly stochastic VI (Titsias & Lázaro-Gredilla 2014): ADVI's
  Monte Carlo ELBO and optimizer (:mod:`vibench.methods.advi`) with the log joint
  replaced by the minibatch log joint log p(z) + (N/|S|) Σ_{i∈S} log p(x_i | z),
  which :func:`vibench.minibatch.minibatch_logp` evaluates from the task's model.
  With local latents (``Subsample.local``: per-datum sites such as ppca's z; meanfield
  family) each point has its own factor, updated only when the point is in the
  minibatch, by the gradient of its own ELBO term and its own optimizer state (Hoffman
  et al.'s local step, by gradient); global factors take the scaled gradient every step
  (:mod:`vibench.methods._svi`, :mod:`vibench.structure.local`).
- ``mode=natural``: natural-gradient SVI for conjugate models (Hoffman, Blei, Wang &
  Paisley 2013), for tasks that also declare
  :class:`vibench.minibatch.MinibatchConjugate` (an exactly Gaussian posterior with
  natural parameters λ = prior + Σ_i contribution_i). Each step forms the estimate
  λ̂ = prior + (N/|S|) Σ_{i∈S} contribution_i and moves q's natural parameters by
  the Robbins–Monro step ρ_t = (t + τ)^(−κ), t = 1, 2, ..., κ ∈ (0.5, 1]:
  ``fullrank``: q(z) is one global Gaussian factor with natural parameters
  (precision, shift), updated λ ← (1 − ρ_t) λ + ρ_t λ̂; it converges to the exact
  posterior. ``meanfield``: each coordinate i is a factor with natural parameters
  (P_i, g_i), whose optimum given the others is (Λ̂_ii, ĥ_i − Σ_{j≠i} Λ̂_ij m_j);
  the factors move to it in turn (ρ_t-relaxed Gauss–Seidel: a CAVI sweep when
  ρ_t = 1). It converges to the mean-field optimum, CAVI's fixed point. Updating
  the factors in turn, not all at once, matters: the simultaneous update is damped
  Jacobi, which diverges on correlated posteriors while ρ_t > 2 / λ_max(D⁻¹Λ)
  (D = diag Λ), whereas relaxed Gauss–Seidel converges for any ρ ∈ (0, 2).

Cost (``grad_evals``) counts likelihood terms touched, in units of one full pass
over the data (N per-datum terms = 1 evaluation; the prior's terms are free): a
``reparam`` step evaluates ``num_samples`` minibatch gradients, num_samples·|S|/N
evaluations; a ``natural`` step forms the minibatch's natural parameters, |S|/N,
as they are the coefficients of the per-datum gradients (∇_z log p(x_i | z) =
h_i − Λ_i z). The trace is an unbiased minibatch estimate of the ELBO at the
parameters before each step: ADVI's Monte Carlo estimate (reparam), or E_q[log
p̂_S(x, z)] + H(q) = log p̂_S(x, m) − ½ tr(Λ̂_S Σ_q) + H(q) in closed form (natural:
the minibatch log joint is quadratic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, Method
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class SVIConfig:
    """mode: ``reparam`` (doubly stochastic, any Subsample task) or ``natural``
    (natural gradients, MinibatchConjugate tasks); family: Gaussian family (natural:
    meanfield or fullrank); rank: factor rank (lowrank only); batch_size: data points
    per step; steps: number of steps; kappa, tau: natural step sizes ρ_t = (t + τ)^(−κ);
    num_samples, optimizer, lr, schedule, stl: reparam mode's Monte Carlo draws per
    gradient and optax optimizer, as ADVI's; init_scale: initial standard deviation."""

    mode: Literal["reparam", "natural"] = "reparam"
    family: Literal["meanfield", "fullrank", "lowrank"] = "meanfield"
    rank: Annotated[int, Range(1, 1000)] = 2
    batch_size: Annotated[int, Range(1, 10**6)] = 10
    steps: Annotated[int, Range(1, 10**7)] = 2000
    kappa: Annotated[float, Range(0.5, 1, low_open=True)] = 0.6
    tau: Annotated[float, Range(0, 10**6)] = 1.0
    num_samples: Annotated[int, Range(1, 10**5)] = 8
    optimizer: Literal["adam", "adamw", "adabelief", "rmsprop", "sgd"] = "adam"
    lr: Annotated[float, Range(0, 100, low_open=True)] = 0.02
    schedule: Literal["cosine", "constant"] = "cosine"
    stl: bool = False
    init_scale: Annotated[float, Range(0, 1000, low_open=True)] = 1.0

    def check(self) -> None:
        """Natural gradients exist for the meanfield and fullrank families only."""
        if self.mode == "natural" and self.family not in ("meanfield", "fullrank"):
            raise ValueError(f"parameter family must be meanfield or fullrank with mode=natural; got {self.family}")


svi = Method(
    name="svi",
    version=VERSION,
    Config=SVIConfig,
    supports=Deferred("vibench.methods._svi:supports"),
    fit=Deferred("vibench.methods._svi:fit"),
    budget=Deferred("vibench.methods._svi:budget"),
    doc=__doc__,
)
