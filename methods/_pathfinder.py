"""The computation of :mod:`vibench.methods.pathfinder` (declared there, with its parameters)."""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
from blackjax.optimizers.lbfgs import bfgs_sample, lbfgs_recover_alpha

from vibench.core import Approximation, Array, Data, LogDensity, Task
from vibench.families.gaussian import FullRank
from vibench.methods.pathfinder import PathfinderConfig
from vibench.numerics import lbfgs
from vibench.spec import BudgetTooSmall, field_range


def inverse_hessian_diagonals(path: lbfgs.LBFGSPath) -> tuple[Array, Array, Array]:
    """Per path point: the diagonal α (their Algorithm 3), and the position and gradient
    differences (s, y) with those failing the curvature test sᵀy > ε‖y‖ zeroed."""
    s = jnp.diff(path.x, axis=0)
    y = jnp.diff(path.grad, axis=0)

    def update(alpha, sy):
        alpha, accepted = lbfgs_recover_alpha(alpha, *sy)
        return alpha, (alpha, accepted)

    ones = jnp.ones_like(path.x[0])
    _, (alphas, accepted) = jax.lax.scan(update, ones, (s, y))
    alpha = jnp.concatenate([ones[None], alphas])
    return alpha, jnp.where(accepted, s, 0.0), jnp.where(accepted, y, 0.0)


def inverse_hessian_factors(s: Array, y: Array, alpha: Array) -> tuple[Array, Array]:
    """``(β, γ)`` with Σ = diag(α) + β γ βᵀ the L-BFGS inverse Hessian from the
    differences ``s``, ``y`` (memory, dim) (Zhang et al., formula II.2; Byrd, Nocedal &
    Schnabel 1994): β = [diag(α) Y, S], γ = [[0, −R⁻¹], [−R⁻ᵀ, R⁻ᵀ(Yᵀdiag(α)Y + D)R⁻¹]],
    R = triu(SᵀY), D = diag(SᵀY). Zero (padding or rejected) pairs have zero columns
    in β; their diagonal of R is set to 1 so that R stays invertible."""
    sy = s @ y.T
    diagonal = jnp.diag(sy)
    r = jnp.triu(sy) + jnp.diag(jnp.where(diagonal == 0, 1.0, 0.0))
    minus_inv_r = -jnp.linalg.inv(r)
    scaled_y = jnp.sqrt(alpha) * y
    corner = minus_inv_r.T @ (scaled_y @ scaled_y.T + jnp.diag(diagonal)) @ minus_inv_r
    zeros = jnp.zeros_like(r)
    gamma = jnp.block([[zeros, minus_inv_r], [minus_inv_r.T, corner]])
    return jnp.concatenate([(alpha * y).T, s.T], axis=1), gamma


def local_normal(path, alpha, s, y, memory: int, i: Array):
    """Point i's ``(position, ∇log p, α, β, γ)``: Σᵢ from the last ``memory`` differences."""
    window = i + jnp.arange(memory)  # differences i − memory … i − 1, zero-padded before 0
    pad = ((memory, 0), (0, 0))
    s_window = jnp.pad(s, pad)[window]
    y_window = jnp.pad(y, pad)[window]
    beta, gamma = inverse_hessian_factors(s_window, y_window, alpha[i])
    return path.x[i], -path.grad[i], alpha[i], beta, gamma


def scale_tril(alpha: Array, beta: Array, gamma: Array) -> Array:
    """Lower-triangular L with L Lᵀ = diag(α) + β γ βᵀ.

    As in ``bfgs_sample``: with β/√α = Q R and I + R γ Rᵀ = M Mᵀ, Σ = A Aᵀ for
    A = diag(√α)(I + Q (M − I) Qᵀ); then Aᵀ = Q' R' gives Σ = R'ᵀ R', so L = R'ᵀ with
    its columns' signs made positive.
    """
    q, r = jnp.linalg.qr(beta / jnp.sqrt(alpha)[:, None])
    m = jnp.linalg.cholesky(jnp.eye(r.shape[0], dtype=r.dtype) + r @ gamma @ r.T)
    eye = jnp.eye(alpha.shape[0], dtype=alpha.dtype)
    root = jnp.sqrt(alpha)[:, None] * (eye + q @ (m - jnp.eye(m.shape[0], dtype=m.dtype)) @ q.T)
    upper = jnp.linalg.qr(root.T, mode="r")
    return upper.T * jnp.sign(jnp.diag(upper))


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: PathfinderConfig):
    key_init, key_elbo = jax.random.split(key)
    logp = lambda z: logdensity.logp(z, data)
    path = lbfgs.minimize(
        lambda z: -logp(z),
        logdensity.init(key_init),
        config.maxiter,
        config.memory,
        config.gtol,
        config.ftol,
        max_evals=config.max_grad_evals,
    )
    alpha, s, y = inverse_hessian_diagonals(path)
    points = path.iterations + 1
    keys = jax.random.split(key_elbo, config.maxiter + 1)

    def record_elbo(i, trace):
        normal = local_normal(path, alpha, s, y, config.memory, i)
        z, log_q = bfgs_sample(keys[i], config.num_elbo_draws, *normal)
        return trace.at[i].set(jnp.mean(jax.vmap(logp)(z) - log_q))

    # A loop to the path's end, not over all maxiter + 1 rows (a vmapped run goes to
    # the longest path of the batch); the rest of the trace stays NaN.
    trace = jnp.full(config.maxiter + 1, jnp.nan, path.value.dtype)
    trace = jax.lax.fori_loop(0, points, record_elbo, trace)
    best = jnp.argmax(jnp.where(jnp.isfinite(trace), trace, -jnp.inf))
    position, grad_logp, alpha_best, beta, gamma = local_normal(path, alpha, s, y, config.memory, best)
    loc = position + alpha_best * grad_logp + beta @ (gamma @ (beta.T @ grad_logp))
    chol = scale_tril(alpha_best, beta, gamma)
    return Approximation(
        params={"loc": loc, "log_diag": jnp.log(jnp.diag(chol)), "lower": chol},
        trace=trace,
        grad_evals=path.grad_evals,
        family=FullRank(),
        steps=points,
        converged=path.converged,
        out_of_budget=path.out_of_budget,
        diagnostics={
            "logp_evals": points * config.num_elbo_draws,
            "best_iteration": best,
        },
    )


def budget(config: PathfinderConfig, grad_evals: int, task: Task) -> PathfinderConfig:
    """Caps L-BFGS's gradient evaluations; the smallest budget pays for one iteration
    (the start and a line search)."""
    minimum = 1 + lbfgs.MAX_LINESEARCH
    if grad_evals < minimum:
        raise BudgetTooSmall(minimum, "one L-BFGS iteration: its start and a line search", grad_evals)
    return replace(config, max_grad_evals=min(grad_evals, field_range(PathfinderConfig, "max_grad_evals").high))
