"""The results store: a directory of Parquet files, append-only, written atomically.

``pandas.read_parquet(DIR)`` loads every metrics file of ``DIR`` as one tidy table
(one row per run and metric). Traces live in ``DIR/_traces/`` and SBC ranks in
``DIR/_sbc/``: Arrow's dataset discovery skips names starting with ``_`` or ``.``,
so they never mix into the metrics table. Each file is written under a hidden
temporary name and renamed into place, so a reader or a parallel writer never sees
a partial file, and a second run adds files beside the first.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1

METRICS_SCHEMA = pa.schema(
    [
        ("schema_version", pa.int32()),
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

TRACES_DIR = "_traces"
SBC_DIR = "_sbc"


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


def append_runs(out: Path, rows: list[dict], traces: list[dict]) -> Path:
    """Append metric rows (and their traces) to the store at ``out``."""
    out = Path(out)
    table = pa.Table.from_pylist(rows, schema=METRICS_SCHEMA)
    path = write_atomic(table, out, f"runs-{_stamp()}")
    if traces:
        write_atomic(pa.Table.from_pylist(traces, schema=TRACES_SCHEMA), out / TRACES_DIR, path.stem)
    return path


def read_metrics(out: Path) -> pd.DataFrame:
    """The metrics table of a results directory."""
    return pd.read_parquet(Path(out))


def read_traces(out: Path) -> pd.DataFrame:
    """The traces table of a results directory (empty if none were written)."""
    path = Path(out) / TRACES_DIR
    if not path.is_dir():
        return TRACES_SCHEMA.empty_table().to_pandas()
    return pd.read_parquet(path)
