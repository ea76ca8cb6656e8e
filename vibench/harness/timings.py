"""Repeated fit timings: the raw samples a speed comparison needs.

``vibench run --repeat R`` times each seed's compiled fit R times (the same data and
key, so the same computation). The metric row ``time_fit_s`` stays the first timing,
as without ``--repeat``; all R timings (``repeat`` 0 is that first one) go to the side
table ``DIR/_timings/`` (:data:`TIMINGS_SCHEMA`), one row per timing, written only when
R > 1. A rank test of two speeds (:mod:`vibench.compare`) reads these samples, or one
``time_fit_s`` per seed for runs without repeats. This module imports no JAX.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from vibench.harness.store import read_side_table, write_atomic

TIMINGS_DIR = "_timings"
TIMINGS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("task_label", pa.string()),
        ("label", pa.string()),
        ("seed", pa.int64()),
        ("repeat", pa.int64()),
        ("seconds", pa.float64()),
    ]
)


def timing_rows(ids: dict, seconds: list[float]) -> list[dict]:
    """Rows of :data:`TIMINGS_SCHEMA` for one run (``ids``: its ``run_id``,
    ``task_label``, ``label`` and ``seed``), none when it was timed once."""
    if len(seconds) < 2:
        return []
    return [{**ids, "repeat": i, "seconds": s} for i, s in enumerate(seconds)]


def append_timings(out: Path, rows: list[dict]) -> Path | None:
    """Append timing rows to ``out/_timings/`` (nothing, ``None``, when there are none)."""
    if not rows:
        return None
    return write_atomic(pa.Table.from_pylist(rows, schema=TIMINGS_SCHEMA), Path(out) / TIMINGS_DIR, "timings")


def read_timings(out: Path) -> pd.DataFrame:
    """The repeated timings of a results directory (empty if none were written)."""
    return read_side_table(out, TIMINGS_DIR, TIMINGS_SCHEMA)
