"""L-BFGS under ``lax.scan`` that records its path and counts its gradient evaluations.

Optax's L-BFGS (Liu & Nocedal 1989) with its zoom line search (strong Wolfe
conditions; Nocedal & Wright 2006, Alg. 3.5–3.6). Every line-search trial evaluates
the objective and its gradient once, and the value and gradient at the accepted
point are reused for the next direction, so a run costs exactly
1 + Σ (line-search trials) gradient evaluations, read from the line search's own
counter.

The run stops (or never starts) where the gradient norm is at most ``gtol``, or
after an iteration whose decrease of the objective is at most ``ftol`` · max(|f|, 1)
(no measurable progress; a line search that cannot decrease f stops it too), and
otherwise after ``maxiter`` iterations. With ``max_evals`` it also stops,
unconverged, before an iteration whose line search could overrun that many gradient
evaluations in all (each iteration tries at most ``max_linesearch`` points), so the
count never exceeds it; ``out_of_budget`` says so. A step to a non-finite value is rejected and stops the run,
unconverged. Shapes are static: the path has ``maxiter + 1`` rows, the start first,
and rows past the last iteration repeat the last point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from vibench.core import Array

MAX_LINESEARCH = 20


class LBFGSPath(NamedTuple):
    """Iterates ``x`` (maxiter + 1, dim), objective ``value`` and ``grad`` at each;
    ``iterations`` run, whether the run ``converged`` (gtol or ftol), whether
    ``max_evals`` ended it (``out_of_budget``) and its ``grad_evals``."""

    x: Array
    value: Array
    grad: Array
    iterations: Array
    converged: Array
    out_of_budget: Array
    grad_evals: Array


class _State(NamedTuple):
    path: LBFGSPath
    solver: optax.OptState
    running: Array


def minimize(
    fun: Callable[[Array], Array],
    x0: Array,
    maxiter: int,
    memory: int,
    gtol: float,
    ftol: float,
    max_evals: int = 0,
    max_linesearch: int = MAX_LINESEARCH,
) -> LBFGSPath:
    """Minimize ``fun`` from ``x0``; ``max_evals`` 0 means no cap on gradient evaluations.

    A ``while_loop`` over iterations, so that a vmapped run (over seeds or data sets)
    costs the iterations of its slowest member, not ``maxiter``.
    """
    solver = optax.lbfgs(
        memory_size=memory,
        linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=max_linesearch),
    )
    value, grad = jax.value_and_grad(fun)(x0)
    rows = maxiter + 1
    path = LBFGSPath(
        x=jnp.broadcast_to(x0, (rows,) + x0.shape),
        value=jnp.broadcast_to(value, (rows,)),
        grad=jnp.broadcast_to(grad, (rows,) + grad.shape),
        iterations=jnp.asarray(0),
        converged=jnp.linalg.norm(grad) <= gtol,
        out_of_budget=jnp.asarray(False),
        grad_evals=jnp.asarray(1),
    )
    budget_left = max_evals <= 0 or max_evals >= 1 + max_linesearch
    path = path._replace(out_of_budget=~path.converged & (maxiter > 0) & (not budget_left))

    def iterate(state: _State) -> _State:
        path, i = state.path, state.path.iterations
        x, value, grad = path.x[i], path.value[i], path.grad[i]
        updates, opt_state = solver.update(grad, state.solver, x, value=value, grad=grad, value_fn=fun)
        new_value, new_grad = optax.tree.get(opt_state, "value"), optax.tree.get(opt_state, "grad")
        evals = path.grad_evals + optax.tree.get(opt_state, "num_linesearch_steps")
        finite = jnp.isfinite(new_value) & jnp.all(jnp.isfinite(new_grad))
        scale = jnp.maximum(jnp.maximum(jnp.abs(value), jnp.abs(new_value)), 1.0)
        converged = finite & (
            (jnp.linalg.norm(new_grad) <= gtol) | (value - new_value <= ftol * scale)
        )
        going_on = finite & ~converged & (i + 1 < maxiter)
        affordable = evals + max_linesearch <= max_evals if max_evals > 0 else jnp.asarray(True)
        # A rejected (non-finite) step is not recorded: the path ends at the last good point.
        rest = jnp.arange(rows) > i
        path = LBFGSPath(
            x=jnp.where(finite & rest[:, None], x + updates, path.x),
            value=jnp.where(finite & rest, new_value, path.value),
            grad=jnp.where(finite & rest[:, None], new_grad, path.grad),
            iterations=i + finite,
            converged=converged,
            out_of_budget=going_on & ~affordable,
            grad_evals=evals,
        )
        return _State(path, opt_state, going_on & affordable)

    start = _State(path, solver.init(x0), budget_left & ~path.converged & (maxiter > 0))
    return jax.lax.while_loop(lambda state: state.running, iterate, start).path
