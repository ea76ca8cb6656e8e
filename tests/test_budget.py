"""``--budget N``: every method's configured run costs at most N gradient evaluations
(by an independent cost model of each method), a budget too small is refused up front
naming the smallest one that works, and the README's example runs every method."""

from __future__ import annotations

import jax
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibench.harness.runner import run_pair
from vibench.registry import discover
from vibench.spec import SpecError
from vibench.structure.minibatch import Subsample

REGISTRY = discover()
TASK = REGISTRY.task("linreg")
SUPPORTED = sorted(name for name, m in REGISTRY.methods.items() if m.supports(TASK)[0])


def worst_case_cost(name: str, c) -> float:
    """The most gradient evaluations (bbvi: log-joint evaluations; svi: full data passes)
    the configured run can spend, from the method's documented cost."""
    if name in ("advi", "bbvi", "flow"):
        return c.steps * c.num_samples
    if name == "iwae":
        return c.steps * c.k * c.num_estimates
    if name == "svgd":
        return c.steps * c.num_particles
    if name == "svi":
        per_step = c.num_samples if c.mode == "reparam" else 1
        return c.steps * per_step * c.batch_size / TASK.extension(Subsample).size
    if name == "nuts":
        return c.num_chains * (1 + (c.num_warmup + c.num_samples) * (2**c.max_tree_depth - 1))
    if name == "hmc":
        return c.num_chains * (1 + (c.num_warmup + c.num_samples) * c.num_steps)
    if name in ("laplace", "pathfinder"):
        return c.max_grad_evals  # a hard cap inside the fit
    if name in ("cavi", "exact"):
        return 0
    raise AssertionError(f"no cost model for {name}")


def test_every_method_has_a_cost_model():
    for name in SUPPORTED:
        worst_case_cost(name, REGISTRY.method(name).config)


@pytest.mark.parametrize("name", SUPPORTED)
@settings(max_examples=40, deadline=None)
@given(budget=st.one_of(st.integers(1, 100_000), st.integers(1, 10**12)))
def test_a_budget_is_never_exceeded_or_is_refused_naming_the_smallest(name, budget):
    choice = REGISTRY.method(name)
    try:
        configured = choice.with_budget(budget, TASK)
    except SpecError as err:
        message = str(err)
        assert message.startswith(f"method {name} needs a budget of at least ") and f"got {budget}" in message
        minimum = int(message.split("at least ")[1].split()[0])
        assert minimum > budget
        at_minimum = choice.with_budget(minimum, TASK)  # the named budget works
        assert worst_case_cost(name, at_minimum.config) <= minimum
        with pytest.raises(SpecError):
            choice.with_budget(minimum - 1, TASK)
        return
    assert worst_case_cost(name, configured.config) <= budget


@pytest.mark.parametrize("name", ["advi", "bbvi", "flow", "iwae", "svgd"])
@pytest.mark.parametrize("budget", [8, 100, 999, 20_000, 3 * 10**6])
def test_step_methods_spend_all_but_less_than_one_step(name, budget):
    choice = REGISTRY.method(name)
    try:
        configured = choice.with_budget(budget, TASK).config
    except SpecError:
        return
    per_step = worst_case_cost(name, configured) / configured.steps
    assert budget - per_step < worst_case_cost(name, configured) <= budget


def test_advi_budget_of_one_is_refused_with_the_smallest():
    with pytest.raises(SpecError, match=r"^method advi needs a budget of at least 8 gradient evaluations "
                       r"\(num_samples=8 per step\); got 1$"):
        REGISTRY.method("advi").with_budget(1, TASK)


def test_nuts_under_the_readme_budget_fits_warmup_and_sampling():
    config = REGISTRY.method("nuts").with_budget(20_000, TASK).config
    assert (config.max_tree_depth, config.num_warmup, config.num_samples) == (4, 166, 167)
    assert worst_case_cost("nuts", config) <= 20_000
    big = REGISTRY.method("nuts").with_budget(10**9, TASK).config
    assert (big.max_tree_depth, big.num_warmup, big.num_samples) == (10, 500, 500)  # all fits


def test_a_huge_budget_keeps_configs_inside_their_declared_bounds():
    for name in SUPPORTED:
        REGISTRY.method(name).with_budget(10**15, TASK)  # check_config would raise otherwise


@pytest.mark.slow  # about 30 s, compile-bound
def test_nuts_at_its_smallest_budget_runs_and_stays_inside_it():
    """A real NUTS run at the smallest budget it accepts: draws from every chain, and
    at most that many gradient evaluations."""
    choice = REGISTRY.method("nuts")
    with pytest.raises(SpecError, match="at least 12004") as err:
        choice.with_budget(12_003, TASK)
    assert "tree depth 4" in str(err.value)
    choice = choice.with_budget(12_004, TASK)
    (outcome,) = run_pair(TASK, choice, [0], jax.devices("cpu")[0], n_draws=256)
    rows = {row["metric"]: row for row in outcome.rows}
    assert {row["status"] for row in outcome.rows} == {"ok"}, {row["error"] for row in outcome.rows}
    assert rows["grad_evals"]["value"] <= 12_004


@pytest.mark.slow
def test_readme_budget_example_gives_every_method_an_ok_run(tmp_path):
    from vibench.cli import main

    out = tmp_path / "out"
    main(["run", "--task", "linreg", "--budget", "20000", "--draws", "256", "--out", str(out)])
    df = pd.read_parquet(out)
    assert set(df["method"]) == set(SUPPORTED)
    bad = df[df["status"] != "ok"]
    assert bad.empty, bad[["method", "status", "error"]].drop_duplicates().to_string()
    grad_evals = df[df["metric"] == "grad_evals"].set_index("method")["value"]
    assert (grad_evals <= 20_000).all(), grad_evals.to_dict()
