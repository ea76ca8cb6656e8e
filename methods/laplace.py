"""Laplace: a Gaussian at the posterior mode with the inverse Hessian as covariance.

q = N(ẑ, Λ⁻¹), ẑ = argmax log p(x, z) on the flat unconstrained space (log-Jacobian
included, as Stan's ``laplace``), Λ = −∇² log p(x, ẑ). The mode comes from L-BFGS
(:mod:`vibench.lbfgs`) from ``logdensity.init``; the Hessian from ``jax.hessian``
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

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from vibench import lbfgs
from vibench.core import Approximation, Array, Data, LogDensity, Method, Task, any_task
from vibench.families import FullRank

VERSION = "1"


@dataclass(frozen=True)
class LaplaceConfig:
    """maxiter: L-BFGS iterations at most; memory: L-BFGS history size; gtol: stop when
    the gradient norm is at most this; ftol: stop when an iteration lowers −log p by at
    most this relative to max(|log p|, 1) (0: only when it cannot lower it at all);
    max_grad_evals: cap on gradient evaluations, Hessian included (0: none)."""

    maxiter: int = 1000
    memory: int = 10
    gtol: float = 1e-6
    ftol: float = 0.0
    max_grad_evals: int = 0


def scale_tril_from_precision(precision: Array) -> Array:
    """Lower-triangular L with L Lᵀ = Λ⁻¹, from a Cholesky factor of Λ without forming Λ⁻¹.

    With J the exchange matrix (reversed order), J Λ J = M Mᵀ gives Λ = U Uᵀ, U = J M J
    upper triangular, so Λ⁻¹ = U⁻ᵀ U⁻¹ and U⁻ᵀ is lower triangular. NaN where Λ is not
    positive definite (as ``jnp.linalg.cholesky``).
    """
    upper = jnp.linalg.cholesky(precision[::-1, ::-1])[::-1, ::-1]
    eye = jnp.eye(precision.shape[0], dtype=precision.dtype)
    return jsl.solve_triangular(upper, eye, lower=False).T


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: LaplaceConfig):
    dim = logdensity.dim
    final_cost = dim + 1  # the Hessian and the Newton step's gradient
    if 0 < config.max_grad_evals <= final_cost:
        raise ValueError(
            f"laplace: a budget of {config.max_grad_evals} gradient evaluations cannot pay for "
            f"the Hessian and Newton step ({final_cost}) and any optimization"
        )
    neg_logp = lambda z: -logdensity.logp(z, data)
    path = lbfgs.minimize(
        neg_logp,
        logdensity.init(key),
        config.maxiter,
        config.memory,
        config.gtol,
        config.ftol,
        max_evals=config.max_grad_evals - final_cost if config.max_grad_evals > 0 else 0,
    )
    start, grad = path.x[path.iterations], path.grad[path.iterations]
    hessian = jax.hessian(neg_logp)(start)
    precision = 0.5 * (hessian + hessian.T)
    scale_tril = scale_tril_from_precision(precision)
    positive_definite = jnp.all(jnp.isfinite(scale_tril)) & jnp.all(jnp.diag(scale_tril) > 0)
    newton = start - scale_tril @ (scale_tril.T @ grad)
    newton_grad = jax.grad(neg_logp)(newton)
    improved = jnp.linalg.norm(newton_grad) < jnp.linalg.norm(grad)
    mode = jnp.where(improved, newton, start)
    nan_unless_pd = lambda a: jnp.where(positive_definite, a, jnp.nan)
    steps = path.iterations + 1
    trace = jnp.where(jnp.arange(config.maxiter + 1) < steps, -path.value, jnp.nan)
    return Approximation(
        params={
            "loc": nan_unless_pd(mode),
            "log_diag": nan_unless_pd(jnp.log(jnp.abs(jnp.diag(scale_tril)))),
            "lower": nan_unless_pd(scale_tril),
        },
        trace=trace,
        grad_evals=path.grad_evals + final_cost,
        family=FullRank(),
        objective="log_joint",
        steps=steps,
        converged=path.converged,
        out_of_budget=path.out_of_budget,
        diagnostics={
            "hessian_pd": positive_definite.astype(jnp.float32),
            "grad_norm": jnp.linalg.norm(jnp.where(improved, newton_grad, grad)),
        },
    )


def budget(config: LaplaceConfig, grad_evals: int, task: Task) -> LaplaceConfig:
    """Caps L-BFGS and the Hessian together (the fit raises if the Hessian alone overruns)."""
    return replace(config, max_grad_evals=grad_evals)


laplace = Method(
    name="laplace",
    version=VERSION,
    Config=LaplaceConfig,
    supports=any_task,
    fit=fit,
    budget=budget,
    doc=__doc__,
)
