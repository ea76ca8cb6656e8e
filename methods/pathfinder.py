"""Pathfinder: the best Gaussian along an L-BFGS path (Zhang, Carpenter, Gelman & Vehtari 2022).

Single-path Pathfinder (their Algorithm 1). L-BFGS climbs log p(x, z) from
``logdensity.init``; at each point zₗ of its path (the start included) the last
``memory`` position and gradient differences give a factored inverse-Hessian
estimate Σₗ = diag(αₗ) + βₗ γₗ βₗᵀ (their Algorithms 2–3), hence a normal
qₗ = N(zₗ + Σₗ ∇log p(zₗ), Σₗ), a Newton step from zₗ. The ELBO of each qₗ is
estimated from ``num_elbo_draws`` draws, and the qₗ with the highest one is the
approximation, returned as a full-rank Gaussian (its Cholesky factor from a QR
decomposition of Σₗ's square root, not from Σₗ itself). The trace is that ELBO
estimate per path point.

blackjax 1.7.1 supplies the diagonal update with its curvature mask and sampling
from qₗ with log qₗ, but not its ``pathfinder.approximate``: that passes the
gradient of −log p where Algorithm 4 takes that of log p, so its normals are
centred on a Newton step the wrong way (away from the mode; it only vanishes at
convergence), and its L-BFGS does not report the line search's gradient
evaluations. Nor its ``lbfgs_inverse_hessian_factors``: it adds float epsilon to
the diagonal sᵀy of R, which in float32 (1.2e-7) is a 10% error once L-BFGS's steps
are small (sᵀy ~ 1e-6), breaking the secant equation Σy = s by up to 2% on linreg;
here only the padding's empty pairs get a (harmless, unit) diagonal.

Cost: ``grad_evals`` counts L-BFGS's gradient evaluations exactly
(:mod:`vibench.numerics.lbfgs`); the ELBO draws need log p only, no gradient, and are
counted apart in ``diagnostics["logp_evals"]`` (path points × ``num_elbo_draws``).
Defaults follow Stan's: history 5, 1000 iterations, 25 ELBO draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from vibench.declarations import Deferred, Method
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class PathfinderConfig:
    """maxiter: L-BFGS iterations at most; memory: L-BFGS history size (the rank of the
    inverse-Hessian update is at most twice this); num_elbo_draws: draws per ELBO
    estimate; gtol: stop when the gradient norm is at most this; ftol: stop when an
    iteration lowers −log p by at most this relative to max(|log p|, 1);
    max_grad_evals: cap on L-BFGS's gradient evaluations (0: none)."""

    maxiter: Annotated[int, Range(1, 10**5)] = 1000
    memory: Annotated[int, Range(1, 1000)] = 5
    num_elbo_draws: Annotated[int, Range(1, 10**5)] = 25
    gtol: Annotated[float, Range(0, 1000)] = 1e-6
    ftol: Annotated[float, Range(0, 1)] = 1e-6
    max_grad_evals: Annotated[int, Range(0, 10**9)] = 0


pathfinder = Method(
    name="pathfinder",
    version=VERSION,
    Config=PathfinderConfig,
    fit=Deferred("vibench.methods._pathfinder:fit"),
    budget=Deferred("vibench.methods._pathfinder:budget"),
    doc=__doc__,
)
