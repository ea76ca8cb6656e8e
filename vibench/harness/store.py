"""The results store: a directory of Parquet files, append-only, written atomically.

:func:`read_metrics` loads every metrics file of ``DIR`` as one tidy table (one row
per run and metric), files of older schema versions migrated (``pandas.read_parquet(DIR)``
reads the same rows, but takes its columns from one file). The ``kind`` of a row's run
is ``run`` (a benchmark run, :mod:`vibench.harness.runner`) or ``sbc`` (:mod:`vibench.sbc`).

Side tables live in folders whose names start with ``_``, which Arrow's dataset
discovery skips, so they never mix into the metrics table:

- ``DIR/_traces/``: objective traces (:data:`TRACES_SCHEMA`);
- ``DIR/_sbc/``: SBC ranks (:data:`vibench.sbc.SBC_SCHEMA`);
- ``DIR/_draws/``: draws of each benchmark run's fitted approximation
  (:data:`DRAWS_SCHEMA`), for tasks of at most :data:`DRAWS_STORED_MAX_DIM` dimensions
  only, at most :data:`DRAWS_STORED` a run: enough to plot, small to keep;
- ``DIR/_reference/``: draws from each such task's reference posterior
  (:data:`REFERENCE_DRAWS_SCHEMA`), stored beside the runs so a report shows the
  ground truth the runs were measured against without rebuilding the task.

Draws are points of the task's flat unconstrained space (as ``LogDensity`` and
``Reference``), long format: one row per draw and coordinate.

Each file is written under a hidden temporary name and renamed into place, so a
reader or a parallel writer never sees a partial file, and a second run adds files
beside the first.

Schema versions: 1 had no ``kind`` column; its SBC runs are recognized by their rows
(an ``sbc_*`` metric or a per-parameter ``METHOD::PARAM`` label), so a version-1 SBC run
that failed before its first metric reads as a benchmark run.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 2

METRICS_SCHEMA = pa.schema(
    [
        ("schema_version", pa.int32()),
        ("kind", pa.string()),
        ("run_id", pa.string()),
        ("task", pa.string()),
        ("task_label", pa.string()),
        ("task_version", pa.string()),
        ("method", pa.string()),
        ("method_version", pa.string()),
        ("label", pa.string()),
        ("config", pa.string()),
        ("config_hash", pa.string()),
        ("seed", pa.int64()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("stderr", pa.float64()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("stop_reason", pa.string()),
        ("device", pa.string()),
        ("git_commit", pa.string()),
        ("host", pa.string()),
        ("versions", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
    ]
)

TRACES_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("task_label", pa.string()),
        ("label", pa.string()),
        ("seed", pa.int64()),
        ("objective", pa.string()),
        ("step", pa.int64()),
        ("value", pa.float64()),
    ]
)

DRAWS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("task_label", pa.string()),
        ("label", pa.string()),
        ("seed", pa.int64()),
        ("draw", pa.int64()),
        ("coordinate", pa.int64()),
        ("value", pa.float64()),
    ]
)

REFERENCE_DRAWS_SCHEMA = pa.schema(
    [
        ("task_label", pa.string()),
        ("task_version", pa.string()),
        ("draw", pa.int64()),
        ("coordinate", pa.int64()),
        ("value", pa.float64()),
    ]
)

TRACES_DIR = "_traces"
SBC_DIR = "_sbc"
DRAWS_DIR = "_draws"
REFERENCE_DIR = "_reference"
DRAWS_STORED_MAX_DIM = 2
DRAWS_STORED = 500


def write_atomic(table: pa.Table, directory: Path, stem: str) -> Path:
    """Write ``table`` to ``directory/stem-<uuid>.parquet`` via a hidden temporary file."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{stem}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = directory / f".tmp-{name}"
    pq.write_table(table, tmp)
    os.replace(tmp, directory / name)
    return directory / name


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")


def append_runs(out: Path, rows: list[dict], traces: list[dict], draws: list[dict] = ()) -> Path:
    """Append metric rows (and their traces and draws) to the store at ``out``."""
    out = Path(out)
    table = pa.Table.from_pylist(rows, schema=METRICS_SCHEMA)
    path = write_atomic(table, out, f"runs-{_stamp()}")
    for side, schema, directory in ((traces, TRACES_SCHEMA, TRACES_DIR), (draws, DRAWS_SCHEMA, DRAWS_DIR)):
        if side:
            write_atomic(pa.Table.from_pylist(side, schema=schema), out / directory, path.stem)
    return path


def append_reference_draws(out: Path, draws: list[dict]) -> Path | None:
    """Append a task's reference draws to the store at ``out``, unless draws of that task
    label and version are stored already (they are the same draws: ``None``)."""
    stored = read_reference_draws(out)
    task_label, task_version = draws[0]["task_label"], draws[0]["task_version"]
    if ((stored["task_label"] == task_label) & (stored["task_version"] == task_version)).any():
        return None
    return write_atomic(
        pa.Table.from_pylist(draws, schema=REFERENCE_DRAWS_SCHEMA), Path(out) / REFERENCE_DIR, f"reference-{_stamp()}"
    )


def read_metrics(out: Path) -> pd.DataFrame:
    """The metrics table of a results directory, every file read with (migrated to)
    :data:`METRICS_SCHEMA`."""
    table = pq.read_table(Path(out), schema=METRICS_SCHEMA).to_pandas()
    unknown = table["kind"].isna()
    if unknown.any():  # schema 1: an SBC run is one with SBC rows (see vibench.sbc)
        metric, label = table["metric"].str, table["label"].str
        sbc_rows = metric.startswith("sbc_", na=False) | label.contains("::", regex=False, na=False)
        sbc_runs = table["run_id"].isin(set(table.loc[sbc_rows, "run_id"]))
        table.loc[unknown, "kind"] = np.where(sbc_runs[unknown], "sbc", "run")
    return table


def read_side_table(out: Path, directory: str, schema: pa.Schema) -> pd.DataFrame:
    """The side table ``out/directory`` read with ``schema`` (empty if none was written)."""
    path = Path(out) / directory
    if not path.is_dir():
        return schema.empty_table().to_pandas()
    return pq.read_table(path, schema=schema).to_pandas()


def read_traces(out: Path) -> pd.DataFrame:
    """The traces table of a results directory (empty if none were written)."""
    return read_side_table(out, TRACES_DIR, TRACES_SCHEMA)


def read_draws(out: Path) -> pd.DataFrame:
    """The runs' draws of a results directory (empty if none were written)."""
    return read_side_table(out, DRAWS_DIR, DRAWS_SCHEMA)


def read_reference_draws(out: Path) -> pd.DataFrame:
    """The reference draws of a results directory (empty if none were written)."""
    return read_side_table(out, REFERENCE_DIR, REFERENCE_DRAWS_SCHEMA)
