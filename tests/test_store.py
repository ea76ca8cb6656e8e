"""The results store: one tidy table per directory, atomic appends, side tables apart,
older schema versions migrated; the draws the runner keeps for plots."""

from __future__ import annotations

from datetime import datetime, timezone

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vibench.core import Approximation
from vibench.families.draws import Draws
from vibench.harness.runner import KEPT_DRAWS_STREAM, kept_draws, logdensity_of, reference_draws, run_pair
from vibench.harness.store import (
    DRAWS_STORED,
    METRICS_SCHEMA,
    SCHEMA_VERSION,
    append_reference_draws,
    append_runs,
    read_draws,
    read_metrics,
    read_reference_draws,
    read_traces,
)


def row(**changes):
    base = {name: None for name in METRICS_SCHEMA.names}
    base.update(
        schema_version=SCHEMA_VERSION, kind="run", run_id="r1", task="t", task_label="t", label="m",
        method="m", seed=0, metric="elbo", value=-1.0, stderr=0.1, status="ok",
        timestamp=datetime.now(timezone.utc),
    )
    base.update(changes)
    return base


def test_appends_are_one_table_and_side_tables_stay_apart(tmp_path):
    ids = {"run_id": "r1", "task_label": "t", "label": "m", "seed": 0}
    trace = [{**ids, "objective": "elbo", "step": i, "value": float(i)} for i in range(3)]
    draws = [{**ids, "draw": i, "coordinate": j, "value": float(i + j)} for i in range(4) for j in range(2)]
    first = append_runs(tmp_path, [row(), row(metric="khat", value=0.3)], trace, draws)
    before = first.read_bytes()
    append_runs(tmp_path, [row(run_id="r2", seed=1, error="boom", status="failed")], [])
    append_reference_draws(tmp_path, [{"task_label": "t", "task_version": "1", "draw": 0, "coordinate": 0,
                                       "value": 1.5}])
    table = read_metrics(tmp_path)
    assert len(table) == 3 and set(table["run_id"]) == {"r1", "r2"}
    assert first.read_bytes() == before  # the first run's file is never rewritten
    assert len(read_traces(tmp_path)) == 3
    kept = read_draws(tmp_path)
    assert len(kept) == 8 and (kept["value"] == kept["draw"] + kept["coordinate"]).all()
    assert read_reference_draws(tmp_path)["value"].tolist() == [1.5]
    again = [{"task_label": "t", "task_version": "1", "draw": 0, "coordinate": 0, "value": 1.5}]
    assert append_reference_draws(tmp_path, again) is None  # one task version's draws are stored once
    assert len(read_reference_draws(tmp_path)) == 1
    assert list(table.columns) == METRICS_SCHEMA.names  # _traces/, _draws/, _reference/ not mixed in
    assert list(pd.read_parquet(tmp_path).columns) == METRICS_SCHEMA.names


def test_schema_1_files_are_read_with_the_kind_of_each_run(tmp_path):
    """Version 1 had no ``kind``: its SBC runs are those with SBC rows, the rest benchmark
    runs; a version-1 file and a current one read as one table."""
    old_schema = pa.schema([f for f in METRICS_SCHEMA if f.name != "kind"])
    old = [
        row(run_id="bench", schema_version=1),
        row(run_id="bench-failed", schema_version=1, metric="run", value=float("nan"), status="failed"),
        row(run_id="sbc", schema_version=1, metric="sbc_pvalue", value=0.4),
        row(run_id="sbc", schema_version=1, metric="time_compile_s", value=2.0),
        row(run_id="sbc", schema_version=1, label="m::z[0]", metric="vsbc_pvalue", value=0.3),
    ]
    for r in old:
        del r["kind"]
    pq.write_table(pa.Table.from_pylist(old, schema=old_schema), tmp_path / "runs-old.parquet")
    append_runs(tmp_path, [row(run_id="new-sbc", kind="sbc", metric="run", status="failed")], [])
    table = read_metrics(tmp_path)
    kinds = table.groupby("run_id")["kind"].agg(set).to_dict()
    assert kinds == {"bench": {"run"}, "bench-failed": {"run"}, "sbc": {"sbc"}, "new-sbc": {"sbc"}}
    assert sorted(table["schema_version"].unique()) == [1, SCHEMA_VERSION] and SCHEMA_VERSION == 2


def test_partial_files_are_invisible(tmp_path):
    append_runs(tmp_path, [row()], [])
    (tmp_path / ".tmp-runs-crashed.parquet").write_bytes(b"PAR1 half a file")
    assert len(pd.read_parquet(tmp_path)) == 1


def test_rows_must_fit_the_schema(tmp_path):
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError)):
        append_runs(tmp_path, [row(value="not a number")], [])
    assert not list(tmp_path.glob("*.parquet"))


# ------------------------------------------------------------------ draws kept for plots
def wide(draws: list[dict]) -> np.ndarray:
    frame = pd.DataFrame(draws)
    return frame.pivot(index="draw", columns="coordinate", values="value").to_numpy()


def test_a_2d_run_keeps_draws_of_its_approximation(registry):
    """The kept draws of a run on a 2-d task are q's own draws with the documented key,
    labelled with the run."""
    task = registry.task("gaussian[dim=2]")
    (outcome,) = run_pair(task, registry.method("advi[steps=50]"), [3], jax.devices("cpu")[0], n_draws=256)
    assert outcome.rows[0]["status"] == "ok" and outcome.rows[0]["kind"] == "run"
    expected = outcome.approximation.sample(jax.random.fold_in(jax.random.key(3), KEPT_DRAWS_STREAM), DRAWS_STORED)
    np.testing.assert_allclose(wide(outcome.draws), np.asarray(expected, np.float64), rtol=1e-6)
    assert {(d["run_id"], d["task_label"], d["label"], d["seed"]) for d in outcome.draws} == {
        (outcome.rows[0]["run_id"], "gaussian[dim=2]", "advi[steps=50]", 3)
    }


def test_a_draws_family_keeps_its_own_draws_at_most_draws_stored():
    """More than DRAWS_STORED draws: a subsample without replacement of whole draws;
    fewer: all of them, in order; only the valid ones of a run stopped by its budget."""
    many = np.asarray(jax.random.normal(jax.random.key(7), (3, 400, 2)), np.float64)
    kept = kept_draws(Approximation({"draws": many}, jnp.zeros(1), jnp.asarray(0), Draws()), jax.random.key(0))
    rows = {tuple(p) for p in kept.tolist()}
    assert kept.shape == (DRAWS_STORED, 2) and len(rows) == DRAWS_STORED  # without replacement
    assert rows <= {tuple(p) for p in many.reshape(-1, 2).tolist()}  # whole draws, never mixed
    few = many[:2, :100]
    padded = {"draws": np.concatenate([few, np.full((2, 50, 2), np.nan)], axis=1), "num_valid": 100}
    for params in ({"draws": few}, padded):
        approx = Approximation(params, jnp.zeros(1), jnp.asarray(0), Draws())
        np.testing.assert_array_equal(kept_draws(approx, jax.random.key(0)), few.reshape(-1, 2))


def test_reference_draws_are_the_exact_posterior(registry):
    """gaussian[dim=2]: N(mean (-1, 1), unit variances, correlation 0.9); each sample
    mean of 500 draws is within 4 standard errors (1/sqrt(500)), and the draws are fixed."""
    task = registry.task("gaussian[dim=2]")
    assert logdensity_of(task).dim == 2
    rows = reference_draws(task)
    values = wide(rows)
    assert values.shape == (DRAWS_STORED, 2) and {r["task_version"] for r in rows} == {task.version}
    np.testing.assert_allclose(values.mean(axis=0), [-1.0, 1.0], atol=4 / np.sqrt(DRAWS_STORED))
    np.testing.assert_array_equal(wide(reference_draws(task)), values)
    assert reference_draws(registry.task("gaussian[dim=3]")) == []  # kept only up to 2 dimensions
