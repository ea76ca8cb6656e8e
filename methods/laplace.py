"""Laplace: a Gaussian at the posterior mode with the inverse Hessian as covariance.

q = N(ẑ, Λ⁻¹), ẑ = argmax log p(x, z) on the flat unconstrained space (log-Jacobian
included, as Stan's ``laplace``), Λ = −∇² log p(x, ẑ). The mode comes from L-BFGS
(:mod:`vibench.numerics.lbfgs`) from ``logdensity.init``; the Hessian from ``jax.hessian``
(forward over reverse) at L-BFGS's last point z₀. L-BFGS's line search compares
values of log p, which in float32 resolve a mode only to about √ε relative (a flat
direction of a 100-d Gaussian is left 0.1 sd off), so the mode is polished by one
Newton step z₀ + Λ⁻¹∇log p(z₀) (the gradient there is already known), kept if the
gradient norm falls. On a Gaussian posterior that step lands on the mode up to
rounding, and the Hessian is constant, so the method is exact; elsewhere the step
moves the mode by O(√ε) and Λ stays the one at z₀.

Cost: L-BFGS's gradient evaluations, counted exactly, ``dim`` for the Hessian (one
forward-mode pass over the gradient per coordinate) and one for the Newton check.
If Λ is not positive
definite (the optimizer stopped at a saddle or on a flat ridge, where no Gaussian
fits) the parameters are NaN, so the harness records the run as ``nan`` rather than
a made-up covariance; ``diagnostics["hessian_pd"]`` says which happened.
The trace is log p(x, z) along the optimization path (objective ``log_joint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from vibench.declarations import Deferred, Method
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class LaplaceConfig:
    """maxiter: L-BFGS iterations at most; memory: L-BFGS history size; gtol: stop when
    the gradient norm is at most this; ftol: stop when an iteration lowers −log p by at
    most this relative to max(|log p|, 1) (0: only when it cannot lower it at all);
    max_grad_evals: cap on gradient evaluations, Hessian included (0: none)."""

    maxiter: Annotated[int, Range(1, 10**5)] = 1000
    memory: Annotated[int, Range(1, 1000)] = 10
    gtol: Annotated[float, Range(0, 1000)] = 1e-6
    ftol: Annotated[float, Range(0, 1)] = 0.0
    max_grad_evals: Annotated[int, Range(0, 10**9)] = 0


laplace = Method(
    name="laplace",
    version=VERSION,
    Config=LaplaceConfig,
    fit=Deferred("vibench.methods._laplace:fit"),
    budget=Deferred("vibench.methods._laplace:budget"),
    doc=__doc__,
)
