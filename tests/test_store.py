"""The results store: one tidy table per directory, atomic appends, side tables apart,
older schema versions migrated; the draws the runner keeps for plots."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vibench.core import Approximation
from vibench.families.draws import Draws
from vibench.harness import DRAWS_STORED
from vibench.harness.runner import KEPT_DRAWS_STREAM, kept_draws, logdensity_of, reference_draws, run_pair
from vibench.harness.store import (
    DRAWS_DIR,
    METRICS_SCHEMA,
    REFERENCE_DIR,
    SBC_DIR,
    SCHEMA_VERSION,
    TRACES_DIR,
    NotResultsError,
    SkippedFileWarning,
    append_reference_draws,
    append_runs,
    nested_results,
    read_draws,
    read_metrics,
    read_reference_draws,
    read_traces,
)
from vibench.sbc.records import read_sbc


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
    assert sorted(table["schema_version"].unique()) == [1, SCHEMA_VERSION] and SCHEMA_VERSION == 3


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


# ------------------------------------------------------------------ what a reader reads
def test_stray_files_and_nested_directories_are_not_read(tmp_path):
    """Only the *.parquet files directly in DIR are metrics: notes, READMEs, an HTML
    report written into it, temporary files and a nested results directory are not."""
    append_runs(tmp_path, [row(), row(metric="khat", value=0.3)], [])
    (tmp_path / "notes.txt").write_text("a note")
    (tmp_path / "README.md").write_text("# results\n")
    (tmp_path / "index.html").write_text("<html></html>")
    (tmp_path / ".tmp-runs-crashed.parquet").write_bytes(b"PAR1 half a file")
    append_runs(tmp_path / "gpu", [row(run_id="gpu-run", device="gpu:H200")], [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing here is worth a warning
        table = read_metrics(tmp_path)
    assert set(table["run_id"]) == {"r1"} and len(table) == 2
    assert nested_results(tmp_path) == [tmp_path / "gpu"]
    assert set(read_metrics(tmp_path / "gpu")["run_id"]) == {"gpu-run"}


def test_a_corrupt_file_is_skipped_with_one_warning_naming_it(tmp_path):
    append_runs(tmp_path, [row()], [])
    bad = tmp_path / "runs-corrupt.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.warns(SkippedFileWarning) as caught:
        table = read_metrics(tmp_path)
    assert len(caught) == 1 and str(bad) in str(caught[0].message)
    assert "\n" not in str(caught[0].message)
    assert set(table["run_id"]) == {"r1"}


@pytest.mark.parametrize("side", [TRACES_DIR, DRAWS_DIR, REFERENCE_DIR, SBC_DIR])
def test_a_corrupt_side_table_file_is_skipped_with_one_warning(tmp_path, side):
    ids = {"run_id": "r1", "task_label": "t", "label": "m", "seed": 0}
    trace = [{**ids, "objective": "elbo", "step": 0, "value": 1.0}]
    draws = [{**ids, "draw": 0, "coordinate": 0, "value": 1.0}]
    append_runs(tmp_path, [row()], trace, draws)
    reference = [{"task_label": "t", "task_version": "1", "draw": 0, "coordinate": 0, "value": 1.5}]
    append_reference_draws(tmp_path, reference)
    (tmp_path / side).mkdir(exist_ok=True)
    bad = tmp_path / side / "broken.parquet"
    bad.write_bytes(b"garbage")
    readers = {TRACES_DIR: read_traces, DRAWS_DIR: read_draws, REFERENCE_DIR: read_reference_draws, SBC_DIR: read_sbc}
    with pytest.warns(SkippedFileWarning) as caught:
        table = readers[side](tmp_path)
    assert len(caught) == 1 and str(bad) in str(caught[0].message)
    assert len(table) == (0 if side == SBC_DIR else 1)
    if side == REFERENCE_DIR:  # the run's writer reads it too: skips the file, keeps the stored draws
        with pytest.warns(SkippedFileWarning):
            assert append_reference_draws(tmp_path, reference) is None


def test_not_a_results_directory(tmp_path):
    """A foreign Parquet file (none of vibench's columns) in an otherwise vibench directory is
    skipped with a warning; a directory of only foreign files, a file or a missing path is
    not a results directory."""
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), foreign / "data.parquet")
    for path in (foreign, foreign / "data.parquet", tmp_path / "missing"):
        with pytest.raises(NotResultsError, match="is not a vibench results directory"):
            read_metrics(path)
    append_runs(foreign, [row()], [])
    with pytest.warns(SkippedFileWarning, match="data.parquet: a Parquet file without vibench's columns"):
        assert set(read_metrics(foreign)["run_id"]) == {"r1"}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert read_metrics(empty).empty and list(read_metrics(empty).columns) == METRICS_SCHEMA.names


def test_the_readme_recipe_reads_a_results_directory_with_stray_files(tmp_path, monkeypatch):
    """The README's Python recipe, run as written, in a folder whose results/ holds the
    files the repository ships there, a stray note, an HTML report and a nested directory."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    section = readme[readme.index("Results go to `results/`"):]
    start = section.index("```python\n") + len("```python\n")
    recipe = section[start:section.index("```", start)]
    results = tmp_path / "results"
    results.mkdir()
    for shipped in (root / "results").iterdir():
        if shipped.is_file() and shipped.suffix != ".parquet":  # not a user's own runs there
            shutil.copy(shipped, results / shipped.name)
    append_runs(results, [row(), row(metric="khat", value=0.3)], [])
    (results / "notes.txt").write_text("a note")
    (results / "index.html").write_text("<html></html>")
    append_runs(results / "gpu", [row(run_id="gpu-run", device="gpu:H200")], [])
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(recipe, scope)  # noqa: S102 -- the README's own recipe, run as written
    frames = [v for v in scope.values() if isinstance(v, pd.DataFrame)]
    assert frames and set(frames[0]["run_id"]) == {"r1"}


def test_reading_results_imports_no_jax():
    code = "import sys; from vibench.harness.store import read_metrics; assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
