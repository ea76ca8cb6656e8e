"""Precision as a run parameter (``--precision float32|float64``).

x64 is process-global in JAX: every run that switches the process to float64 happens
in a subprocess (``python -m vibench.cli``), never in the test worker; in-process
checks use the scoped ``precision_scope`` only and assert the worker is float32 after.
"""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vibench.compare.pairing import KEY, pair_keys
from vibench.harness.precision import FLOAT32_EPS, current_precision, precision_scope
from vibench.harness.store import METRICS_SCHEMA, read_metrics
from vibench.registry import discover
from vibench.report.summary import load_results
from vibench.report.tables import format_table

TASKS = ("linreg", "ppca")
FLOAT64_RTOL = 1e-9
FLOAT32_FACTOR = 8
"""ELBO tolerance under float32, in float32 epsilons of the terms' magnitude. For the
exact posterior q, log p(x, z) − log q(z) = log p(x) at every z, so the ELBO carries no
Monte Carlo error, only rounding: each draw's two summands have magnitudes of at most
about |log p(x)| + dim (log q of a dim-dimensional Gaussian is O(dim)), each computed
to a few ulps of that by float32 reductions and triangular solves, and averaging the
draws does not add to it. 8 ulps of |log p(x)| + dim is that, with room for the
summed and the closed form's own rounding; float64 arithmetic would meet 1e-9 at
either precision's data."""


def vibench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "vibench.cli", *args], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def both_precisions(tmp_path_factory):
    """One results directory: the exact method on linreg and ppca in float32 and float64."""
    out = tmp_path_factory.mktemp("precision")
    for precision in ("float32", "float64"):
        tasks = [arg for task in TASKS for arg in ("--task", task)]
        vibench("run", *tasks, "--method", "exact", "--draws", "64", "--precision", precision, "--out", str(out))
    return out


def _value(table, task: str, precision: str, metric: str) -> float:
    rows = table[(table["task"] == task) & (table["precision"] == precision) & (table["metric"] == metric)]
    assert len(rows) == 1, rows
    return float(rows["value"].iloc[0])


@pytest.mark.parametrize("task", TASKS)
def test_exact_elbo_is_log_px_to_each_precisions_resolution(both_precisions, task):
    table = read_metrics(both_precisions)
    assert set(table["status"]) == {"ok"}
    for precision in ("float32", "float64"):
        rows = table[(table["task"] == task) & (table["precision"] == precision)]
        assert set(rows["schema_version"]) == {3} and set(rows["precision"]) == {precision}
    elbo64, log_px64 = (_value(table, task, "float64", m) for m in ("elbo", "log_px"))
    assert abs(elbo64 - log_px64) <= FLOAT64_RTOL * abs(log_px64)
    elbo32, log_px32 = (_value(table, task, "float32", m) for m in ("elbo", "log_px"))
    dim = _latent_dim(task)
    assert abs(elbo32 - log_px32) <= FLOAT32_FACTOR * FLOAT32_EPS * (abs(log_px32) + dim)


def _latent_dim(task: str) -> int:
    from vibench.harness.runner import logdensity_of

    return logdensity_of(discover(()).task(task)).dim


def test_precisions_are_different_runs_in_report_table_and_compare(both_precisions, tmp_path):
    table = read_metrics(both_precisions)
    hashes = table.drop_duplicates("run_id").groupby("precision")["config_hash"].agg(set)
    assert not hashes["float32"] & hashes["float64"]  # never the same configuration

    results = load_results(both_precisions)
    assert results.entries == ["exact", "exact (float64)"]  # the default is not named, float64 is
    assert len(results.runs) == 4  # neither precision replaced the other's run
    text = format_table(results, "markdown", ["elbo"], "task")
    assert "exact (float64)" in text and "| exact |" in text.replace("  ", " ")
    vibench("report", str(both_precisions), "-o", str(tmp_path / "html"))
    assert "exact (float64)" in (tmp_path / "html" / "index.html").read_text()

    runs = results.runs
    float32 = [tuple(r) for r in runs[runs["precision"] == "float32"][list(KEY)].drop_duplicates().to_numpy()]
    float64 = [tuple(r) for r in runs[runs["precision"] == "float64"][list(KEY)].drop_duplicates().to_numpy()]
    pairs, only_base, only_new = pair_keys(float32, float64)
    assert not pairs and len(only_base) == len(only_new) == len(TASKS)  # never paired across precisions


def test_files_before_schema_3_read_as_float32(tmp_path):
    old_schema = pa.schema([f for f in METRICS_SCHEMA if f.name != "precision"])
    row = {name: None for name in old_schema.names}
    row.update(schema_version=2, kind="run", run_id="old", task="t", task_label="t", label="m", method="m",
               seed=0, metric="elbo", value=-1.0, stderr=0.1, status="ok", timestamp=datetime.now(timezone.utc))
    pq.write_table(pa.Table.from_pylist([row], schema=old_schema), tmp_path / "runs-old.parquet")
    table = read_metrics(tmp_path)
    assert table["precision"].tolist() == ["float32"] and list(table.columns) == METRICS_SCHEMA.names


def test_a_bad_precision_is_refused_before_jax():
    done = subprocess.run([sys.executable, "-m", "vibench.cli", "run", "--task", "linreg", "--precision",
                           "float16"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "float32" in done.stderr and "float64" in done.stderr


def test_closed_forms_are_float64_and_the_data_one_set_in_both_precisions():
    """Closed forms are computed in float64 whatever the run's precision: ``gaussian``'s best
    mean-field ELBO is −½(Σ log P_ii + log det Σ) for Σ = (1 − ρ)I + ρ11ᵀ to float64
    accuracy in this float32 process. Tasks make their data in float32 (``in_float32``), so
    a float64 build of ``linreg`` and ``ppca`` holds the very same data and closed forms."""
    registry = discover(())
    dim, rho = 50, 0.9
    task = registry.task(f"gaussian[dim={dim},rho={rho}]")
    p_ii = (1 - rho / (1 + (dim - 1) * rho)) / (1 - rho)
    log_det = (dim - 1) * math.log(1 - rho) + math.log(1 + (dim - 1) * rho)
    best = -0.5 * (dim * math.log(p_ii) + log_det)
    assert abs(task.reference.meanfield_elbo - best) <= 1e-12 * abs(best)
    assert task.reference.gaussian[1].dtype == np.float64 and "computed in float64" in task.reference.provenance
    for name in ("linreg", "ppca"):
        family, params = registry.task_family(name)
        built32 = family.build(params)
        with precision_scope("float64"):
            built64 = family.build(params)
        for key, value in built64.data.items():
            assert np.array_equal(np.asarray(built32.data[key], np.float64), np.asarray(value))
        assert built32.reference.log_evidence == built64.reference.log_evidence
        assert built32.reference.meanfield_elbo == built64.reference.meanfield_elbo
    assert current_precision() == "float32"  # the scopes left this process as it was


def test_row_noise_is_jax_normal_bit_for_bit_in_float64():
    import jax
    import jax.numpy as jnp

    from vibench.families.gaussian import standard_normal_rows

    with precision_scope("float64"):
        key = jax.random.key(3)
        rows = standard_normal_rows(key, 2, 4, 5, jnp.float64)
        assert rows.dtype == jnp.float64
        assert bool(jnp.all(rows == jax.random.normal(key, (7, 5), jnp.float64)[2:6]))
    assert current_precision() == "float32"


def test_sbc_runs_in_float64(tmp_path):
    vibench("sbc", "--task", "linreg", "--method", "exact", "--replicates", "20", "--draws", "50",
            "--precision", "float64", "--out", str(tmp_path))
    table = read_metrics(tmp_path)
    assert set(table["kind"]) == {"sbc"} and set(table["precision"]) == {"float64"}
    assert set(table["status"]) == {"ok"}
