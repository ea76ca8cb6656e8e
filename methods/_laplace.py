"""The computation of :mod:`vibench.methods.laplace` (declared there, with its parameters)."""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from vibench.core import Approximation, Array, Data, LogDensity, Task
from vibench.families.gaussian import FullRank
from vibench.logdensity import derive_logdensity
from vibench.methods.laplace import LaplaceConfig
from vibench.numerics import lbfgs
from vibench.spec import BudgetTooSmall, field_range


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
    """Caps L-BFGS and the Hessian together; the smallest budget pays for the Hessian,
    the Newton step's gradient and one L-BFGS iteration (its start and a line search)."""
    dim = derive_logdensity(task).dim
    minimum = dim + 1 + 1 + lbfgs.MAX_LINESEARCH
    if grad_evals < minimum:
        why = f"the Hessian and Newton step, {dim + 1} at dim={dim}, and one L-BFGS iteration"
        raise BudgetTooSmall(minimum, why, grad_evals)
    return replace(config, max_grad_evals=min(grad_evals, field_range(LaplaceConfig, "max_grad_evals").high))
