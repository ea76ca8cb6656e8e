"""The results store: one tidy table per directory, atomic appends, side tables apart."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pytest

from vibench.store import METRICS_SCHEMA, SCHEMA_VERSION, append_runs, read_metrics, read_traces


def row(**changes):
    base = {name: None for name in METRICS_SCHEMA.names}
    base.update(
        schema_version=SCHEMA_VERSION, run_id="r1", task="t", task_label="t", label="m",
        method="m", seed=0, metric="elbo", value=-1.0, stderr=0.1, status="ok",
        timestamp=datetime.now(timezone.utc),
    )
    base.update(changes)
    return base


def test_appends_are_one_table_and_side_tables_stay_apart(tmp_path):
    trace = [{"run_id": "r1", "task_label": "t", "label": "m", "seed": 0, "objective": "elbo", "step": i, "value": float(i)} for i in range(3)]
    first = append_runs(tmp_path, [row(), row(metric="khat", value=0.3)], trace)
    before = first.read_bytes()
    append_runs(tmp_path, [row(run_id="r2", seed=1, error="boom", status="failed")], [])
    table = read_metrics(tmp_path)
    assert len(table) == 3 and set(table["run_id"]) == {"r1", "r2"}
    assert first.read_bytes() == before  # the first run's file is never rewritten
    assert len(read_traces(tmp_path)) == 3
    assert "step" not in table.columns  # _traces/ is not mixed in


def test_partial_files_are_invisible(tmp_path):
    append_runs(tmp_path, [row()], [])
    (tmp_path / ".tmp-runs-crashed.parquet").write_bytes(b"PAR1 half a file")
    assert len(pd.read_parquet(tmp_path)) == 1


def test_rows_must_fit_the_schema(tmp_path):
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError)):
        append_runs(tmp_path, [row(value="not a number")], [])
    assert not list(tmp_path.glob("*.parquet"))
