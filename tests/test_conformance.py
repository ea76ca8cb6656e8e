"""Conformance: every registered method on every task it claims to support, through
the harness, with a tiny gradient budget. A method that claims support and fails, or
produces non-finite numbers or misses the metrics its kind must have, fails here."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import task_or_skip

from vibench.harness.runner import run_pair
from vibench.registry import discover

REGISTRY = discover()
BUDGET = 2000  # gradient evaluations: seconds per pair
# An MCMC budget caps the run at its worst-case cost (4 chains x 2^depth per NUTS
# iteration) rather than shortening the chains, so MCMC methods run short chains instead.
SHORT_CHAINS = {"nuts": "nuts[num_warmup=100,num_samples=100]", "hmc": "hmc[num_warmup=100,num_samples=100]"}
DENSITY_METRICS = {"elbo", "log_px_is", "khat_flag"}  # khat is absent for exact q (constant ratios)
ALWAYS = {"time_fit_s", "grad_evals", "steps"}

# Every method on linreg and mixture in the default run (about 20 pairs, compile-bound);
# the whole grid with ``-m slow``: its tasks are built when a test runs, not at collection
# (some read data files, some take seconds), and a pair the method does not support skips.
DEFAULT_TASKS = ("linreg", "mixture")
PAIRS = [
    pytest.param(task_name, method_name, marks=() if task_name in DEFAULT_TASKS else pytest.mark.slow)
    for task_name in sorted(REGISTRY.tasks)
    for method_name, method in sorted(REGISTRY.methods.items())
    if task_name not in DEFAULT_TASKS or method.supports(REGISTRY.task(task_name))[0]
]


@pytest.mark.parametrize("task_name, method_name", PAIRS)
def test_method_runs_on_supported_task(task_name, method_name):
    task = task_or_skip(REGISTRY, task_name)
    ok, reason = REGISTRY.methods[method_name].supports(task)
    if not ok:
        pytest.skip(f"{method_name} does not support {task_name}: {reason}")
    if method_name in SHORT_CHAINS:
        choice = REGISTRY.method(SHORT_CHAINS[method_name])
    else:
        choice = REGISTRY.method(method_name).with_budget(BUDGET, task)
    (outcome,) = run_pair(task, choice, [0], jax.devices("cpu")[0], n_draws=512)
    rows = {row["metric"]: row for row in outcome.rows}
    statuses = {row["status"] for row in outcome.rows}
    errors = {row["error"] for row in outcome.rows}
    assert statuses == {"ok"}, errors
    expected = set(ALWAYS)
    if task.reference.mean is not None and task.reference.std is not None:
        expected |= {"mean_error", "std_error"}
    if outcome.approximation.has_density:
        expected |= DENSITY_METRICS
    assert expected <= set(rows), expected - set(rows)
    values = np.array([row["value"] for row in outcome.rows])
    assert np.all(np.isfinite(values)), {k: r["value"] for k, r in rows.items()}
    if method_name not in SHORT_CHAINS:
        assert rows["grad_evals"]["value"] <= BUDGET
    assert outcome.traces, "every run records the trace of its objective"
