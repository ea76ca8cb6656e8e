"""The results store: a directory of Parquet files, append-only, written atomically.

:func:`read_metrics` loads the metrics files of ``DIR`` as one tidy table (one row per
run and metric), files of older schema versions migrated. It reads the ``*.parquet``
files directly in ``DIR`` and nothing else: other files (a ``notes.txt``, a
``README.md``, an HTML report written into it) are not looked at, a sub-directory is a
results directory of its own (``--out results/gpu``; ``results/baseline/``) and never
mixed in (:func:`nested_results` names them), and a file that cannot be read as
vibench metrics (corrupt, or a Parquet file without :data:`METRICS_SCHEMA`'s columns)
is skipped with one :class:`SkippedFileWarning` naming it. A directory with Parquet
files but none of them vibench metrics raises :class:`NotResultsError`. The ``kind``
of a row's run is ``run`` (a benchmark run, :mod:`vibench.harness.runner`) or ``sbc``
(:mod:`vibench.sbc`). This module imports no JAX: ``read_metrics(DIR)`` is the way to
load results into pandas (``pandas.read_parquet(DIR)`` would recurse into nested
results directories and fail on any stray file).

Side tables live in folders whose names start with ``_`` (which Arrow's dataset
discovery skips too), read the same way (only their own ``*.parquet`` files, an
unreadable one skipped with a warning):

- ``DIR/_traces/``: objective traces (:data:`TRACES_SCHEMA`);
- ``DIR/_sbc/``: SBC ranks (:data:`vibench.sbc.records.SBC_SCHEMA`);
- ``DIR/_draws/``: draws of each benchmark run's fitted approximation
  (:data:`DRAWS_SCHEMA`), for tasks of at most :data:`vibench.harness.DRAWS_STORED_MAX_DIM` dimensions
  only, at most :data:`vibench.harness.DRAWS_STORED` a run: enough to plot, small to keep;
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
that failed before its first metric reads as a benchmark run. 1 and 2 had no
``precision`` column (:mod:`vibench.harness.precision`): every run then was float32.
The side tables carry no precision: they join their runs by ``run_id``.
"""

from __future__ import annotations

import os
import sys
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vibench.harness import RUNS_PREFIX
from vibench.text import first_line

SCHEMA_VERSION = 3

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
        ("precision", pa.string()),
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
ADDED_COLUMNS = ("kind", "precision")
"""Columns of :data:`METRICS_SCHEMA` that files of older schema versions lack (migrated
on reading); a metrics file must hold every other column."""
PRECISION_BEFORE_SCHEMA_3 = "float32"
"""The precision of runs written before schema 3 (which had no ``precision`` column)."""
MESSAGE_CHARS = 200


class SkippedFileWarning(UserWarning):
    """A file of a results directory that could not be read was left out."""


class NotResultsError(ValueError):
    """A path that is not a vibench results directory (missing, a file, or no metrics)."""


@contextmanager
def skipped_files_as_lines(prefix: str = "vibench: warning: ") -> Iterator[None]:
    """Within: each :class:`SkippedFileWarning` is printed to stderr as one line, ``prefix``
    first (not Python's two-line warning format); other warnings as usual."""
    with warnings.catch_warnings():
        show = warnings.showwarning

        def one_line(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, SkippedFileWarning):
                print(f"{prefix}{message}", file=sys.stderr)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = one_line
        yield


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
    path = write_atomic(table, out, f"{RUNS_PREFIX}{_stamp()}")
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


def parquet_files(directory: Path) -> list[Path]:
    """The ``*.parquet`` files directly in ``directory`` (sorted; none whose name starts
    with ``.`` or ``_``: temporary files and side tables)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.glob("*.parquet") if p.is_file() and not p.name.startswith((".", "_"))
    )


def nested_results(directory: Path) -> list[Path]:
    """Sub-directories of ``directory`` (but the ``_`` side tables) holding Parquet files:
    results directories of their own, which the readers of ``directory`` do not read."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and next(p.rglob("*.parquet"), None) is not None
    )




def _read_files(paths: list[Path], schema: pa.Schema, required: tuple[str, ...]) -> tuple[pa.Table, list[str]]:
    """The files concatenated, each read with ``schema``, and why each file left out was
    (one that cannot be read, or lacks a ``required`` column)."""
    tables, skipped = [], []
    for path in paths:
        try:
            missing = [c for c in required if c not in pq.read_schema(path).names]
            if not missing:
                tables.append(pq.read_table(path, schema=schema))
                continue
            more = ", ..." if len(missing) > 3 else ""
            skipped.append(f"{path}: a Parquet file without vibench's columns ({', '.join(missing[:3])}{more})")
        except (pa.ArrowException, OSError) as err:
            skipped.append(f"{path}: unreadable ({type(err).__name__}: {first_line(err, MESSAGE_CHARS)})")
    return (pa.concat_tables(tables) if tables else schema.empty_table()), skipped


def _warn_skipped(skipped: list[str]) -> None:
    for reason in skipped:
        warnings.warn(f"skipped {reason}", SkippedFileWarning, stacklevel=3)


def read_metrics(out: Path) -> pd.DataFrame:
    """The metrics table of a results directory, every file read with (migrated to)
    :data:`METRICS_SCHEMA` (see the module docstring for what is read and skipped).

    Raises :class:`NotResultsError` when ``out`` is not a directory, or holds Parquet
    files of which none can be read as metrics; an empty table when it holds none.
    """
    out = Path(out)
    if not out.is_dir():
        what = "a file" if out.exists() else "not found"
        raise NotResultsError(
            f"{str(out)!r} is not a vibench results directory ({what}; expected the --out folder of vibench run)"
        )
    files = parquet_files(out)
    required = tuple(c for c in METRICS_SCHEMA.names if c not in ADDED_COLUMNS)
    table, skipped = _read_files(files, METRICS_SCHEMA, required)
    if files and len(skipped) == len(files):
        raise NotResultsError(
            f"{str(out)!r} is not a vibench results directory: none of its {len(files)} Parquet file(s) "
            f"holds vibench metrics (e.g. {skipped[0]})"
        )
    _warn_skipped(skipped)
    table = table.to_pandas()
    unknown = table["kind"].isna()
    if unknown.any():  # schema 1: an SBC run is one with SBC rows (see vibench.sbc)
        metric, label = table["metric"].str, table["label"].str
        sbc_rows = metric.startswith("sbc_", na=False) | label.contains("::", regex=False, na=False)
        sbc_runs = table["run_id"].isin(set(table.loc[sbc_rows, "run_id"]))
        table.loc[unknown, "kind"] = np.where(sbc_runs[unknown], "sbc", "run")
    table["precision"] = table["precision"].fillna(PRECISION_BEFORE_SCHEMA_3)
    return table


def read_side_table(out: Path, directory: str, schema: pa.Schema) -> pd.DataFrame:
    """The side table ``out/directory`` read with ``schema`` (empty if none was written;
    a file that cannot be read, or lacks ``schema``'s columns, skipped with a warning)."""
    table, skipped = _read_files(parquet_files(Path(out) / directory), schema, tuple(schema.names))
    _warn_skipped(skipped)
    return table.to_pandas()


def read_traces(out: Path) -> pd.DataFrame:
    """The traces table of a results directory (empty if none were written)."""
    return read_side_table(out, TRACES_DIR, TRACES_SCHEMA)


def read_draws(out: Path) -> pd.DataFrame:
    """The runs' draws of a results directory (empty if none were written)."""
    return read_side_table(out, DRAWS_DIR, DRAWS_SCHEMA)


def read_reference_draws(out: Path) -> pd.DataFrame:
    """The reference draws of a results directory (empty if none were written)."""
    return read_side_table(out, REFERENCE_DIR, REFERENCE_DRAWS_SCHEMA)
