"""The computation of :mod:`vibench.methods.cavi` (declared there, with its parameters).

On a dense :class:`ConjugateGaussian` the sweep updates the coordinates one at a time;
on a :class:`BlockGaussian` (independent K-dim blocks: local latents) a coordinate's
optimal factor depends only on its own block, so coordinate k of every block is
updated at once (Gauss–Seidel within each block, vectorized over blocks): a sweep is
K vector updates, O(N·K²), whatever N.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.gaussian import MeanField
from vibench.methods.cavi import CAVIConfig
from vibench.structure.conjugate import BlockGaussian, ConjugateGaussian


def exact_elbo(logdensity: LogDensity, data: Data, precision, loc, var):
    """E_q[log p(x, z)] + H(q) for q = N(loc, diag(var)) and a quadratic log joint
    with Hessian −``precision`` (a matrix, or its diagonal as a vector)."""
    diagonal = jnp.diag(precision) if precision.ndim == 2 else precision
    expected_logp = logdensity.logp(loc, data) - 0.5 * jnp.sum(diagonal * var)
    entropy = 0.5 * jnp.sum(jnp.log(2 * jnp.pi * jnp.e * var))
    return expected_logp + entropy


def dense_sweep(precision, shift):
    """``(sweep(loc) -> loc, diagonal)``: one Gauss–Seidel pass over every coordinate."""
    diag = jnp.diag(precision)

    def update(i, loc):
        off_diagonal = precision[i] @ loc - diag[i] * loc[i]
        return loc.at[i].set((shift[i] - off_diagonal) / diag[i])

    return lambda loc: jax.lax.fori_loop(0, loc.shape[0], update, loc), diag


def block_sweep(precision, shift):
    """The sweep on blocks: ``precision`` (N, K, K), ``shift`` (N, K); ``loc`` is flat."""
    n, k = shift.shape
    diag = jnp.diagonal(precision, axis1=-2, axis2=-1)

    def update(i, loc):
        off_diagonal = jnp.einsum("nj,nj->n", precision[:, i], loc) - diag[:, i] * loc[:, i]
        return loc.at[:, i].set((shift[:, i] - off_diagonal) / diag[:, i])

    def sweep(loc):
        return jax.lax.fori_loop(0, k, update, loc.reshape(n, k)).reshape(-1)

    return sweep, diag.reshape(-1)


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: CAVIConfig):
    blocks = task.extension(BlockGaussian)
    if blocks is not None:
        sweep, diag = block_sweep(*blocks.blocks(data))
    else:
        sweep, diag = dense_sweep(*task.extension(ConjugateGaussian).natural_params(data))
    var = 1.0 / diag

    def not_done(state):
        sweep_count, _, change, _ = state
        return (sweep_count < config.max_sweeps) & (change > config.tol)

    def body(state):
        sweep_count, loc, _, trace = state
        new = sweep(loc)
        change = jnp.max(jnp.abs(new - loc) * jnp.sqrt(diag))
        trace = trace.at[sweep_count].set(exact_elbo(logdensity, data, diag, new, var))
        return sweep_count + 1, new, change, trace

    loc0 = logdensity.init(key)
    trace0 = jnp.full((config.max_sweeps,), jnp.nan, loc0.dtype)
    sweeps, loc, change, trace = jax.lax.while_loop(
        not_done, body, (jnp.asarray(0), loc0, jnp.asarray(jnp.inf, loc0.dtype), trace0)
    )
    return Approximation(
        params={"loc": loc, "log_scale": 0.5 * jnp.log(var)},
        trace=trace,
        grad_evals=jnp.asarray(0),
        family=MeanField(),
        steps=sweeps,
        converged=change <= config.tol,
    )


def supports(task: Task) -> tuple[bool, str]:
    if task.extension(ConjugateGaussian) is None and task.extension(BlockGaussian) is None:
        return False, "needs closed-form conditionals (a ConjugateGaussian or BlockGaussian task extension)"
    return True, ""
