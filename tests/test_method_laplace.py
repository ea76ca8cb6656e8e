"""Laplace (and the L-BFGS it shares with Pathfinder) against exact answers.

On an exactly Gaussian posterior the Laplace approximation is the posterior, so its
mean and covariance must equal the truth up to float32 rounding. The tolerance is
that of a backward-stable linear solve: relative error ≲ κ·ε with κ the condition
number of the covariance and ε float32's epsilon, and we allow 10 κ ε (measured:
gaussian mean error 0 and covariance 3.6e-7 relative; linreg 1.2e-7 and 6.3e-7,
against 10 κ ε = 1.1e-4 and 3.4e-4).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fit
from jax.experimental import io_callback

from vibench.core import LogDensity
from vibench.harness.runner import logdensity_of
from vibench.methods._laplace import budget
from vibench.methods._laplace import fit as laplace_fit
from vibench.methods.laplace import LaplaceConfig
from vibench.numerics import lbfgs

EPS32 = float(np.finfo(np.float32).eps)


@pytest.mark.parametrize("task_spec", ["gaussian", "linreg"])
def test_exact_on_gaussian_posteriors(registry, task_spec):
    task, _, approx = fit(registry, task_spec, "laplace")
    mean_p, cov_p = (np.asarray(a, np.float64) for a in task.reference.gaussian)
    mean_q, cov_q = (np.asarray(a, np.float64) for a in approx.gaussian())
    tol = 10 * np.linalg.cond(cov_p) * EPS32
    sd_p = np.sqrt(np.diag(cov_p))
    assert np.max(np.abs(mean_q - mean_p) / sd_p) <= tol
    assert np.max(np.abs(cov_q - cov_p)) <= tol * np.max(np.abs(cov_p))
    assert bool(approx.converged) and float(approx.diagnostics["hessian_pd"]) == 1.0
    # The trace is log p along the L-BFGS path: it never decreases (line-search descent).
    trace = np.asarray(approx.ran_trace(), np.float64)
    assert np.all(np.diff(trace) >= -4 * EPS32 * np.abs(trace[1:]))


def _counted(fun, calls: list[int]):
    """``fun`` with a host-side counter of its evaluations (value or gradient alike)."""

    def bump(_):
        calls[0] += 1
        return np.zeros((), np.float32)

    def counted(z):
        return fun(z) + io_callback(bump, jax.ShapeDtypeStruct((), jnp.float32), jax.lax.stop_gradient(z[0]))

    return counted


@pytest.mark.parametrize("max_evals", [0, 30])
def test_lbfgs_counts_every_gradient_evaluation(registry, max_evals):
    # Every evaluation of the objective inside L-BFGS is a value-and-gradient one;
    # counting the calls on the host must give exactly the reported grad_evals, and a
    # cap must hold.
    task = registry.task("linreg")
    ld = logdensity_of(task)
    calls = [0]
    objective = _counted(lambda z: -ld.logp(z, task.data), calls)
    path = jax.jit(lambda x: lbfgs.minimize(objective, x, 200, 10, 1e-6, 0.0, max_evals))(
        ld.init(jax.random.key(0))
    )
    assert int(path.grad_evals) == calls[0]
    if max_evals:
        assert calls[0] <= max_evals and not bool(path.converged)
    else:
        assert bool(path.converged)


def _saddle_logdensity() -> LogDensity:
    """log p = −z₁²/2 + z₂²/2 − z₂⁴/4, started at its saddle 0 (gradient exactly 0)."""
    return LogDensity(
        logp=lambda z, data: -0.5 * z[0] ** 2 + 0.5 * z[1] ** 2 - 0.25 * z[1] ** 4,
        dim=2,
        unflatten=lambda z: {"z": z},
        constrain=lambda z, data: {"z": z},
        init=lambda key: jnp.zeros(2),
    )


def test_indefinite_hessian_gives_nan_not_garbage(registry):
    # At a saddle −∇² log p = diag(1, −1) is not positive definite: no Gaussian fits,
    # and the parameters must be NaN (the harness then records status "nan").
    task = registry.task("gaussian")
    approx = jax.jit(lambda key: laplace_fit(task, _saddle_logdensity(), {}, key, LaplaceConfig()))(
        jax.random.key(0)
    )
    for leaf in jax.tree_util.tree_leaves(approx.params):
        assert np.all(np.isnan(np.asarray(leaf)))
    assert float(approx.diagnostics["hessian_pd"]) == 0.0
    assert int(approx.grad_evals) == 1 + 2 + 1  # start, Hessian (dim 2), Newton check


@pytest.mark.parametrize("cap, stop_reason", [(230, "converged"), (226, "budget")])
def test_budget_caps_optimization_and_hessian(registry, cap, stop_reason):
    # ppca has dim 200: the Hessian alone costs 200 evaluations, so a cap of 230 leaves
    # L-BFGS 29 (one more goes to the Newton check), enough to converge in about 11; 226
    # leaves 25, and L-BFGS stops once a line search of 20 trials could overrun them.
    task, ld, approx = fit(registry, "ppca", f"laplace[max_grad_evals={cap}]")
    assert int(approx.grad_evals) <= cap
    assert approx.stop_reason == stop_reason
    assert budget(LaplaceConfig(), cap, task).max_grad_evals == cap
    with pytest.raises(ValueError, match="cannot pay for the Hessian"):
        laplace_fit(task, ld, task.data, jax.random.key(0), LaplaceConfig(max_grad_evals=ld.dim))
