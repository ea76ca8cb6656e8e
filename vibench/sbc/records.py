"""The records of an SBC run, readable without JAX: its outcome, the uniformity tests of
its ranks, and the rank table in the store (``OUT/_sbc/``, :data:`SBC_SCHEMA`).
The run itself is :mod:`vibench.sbc.run`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from vibench.harness.store import METRICS_SCHEMA, SBC_DIR, append_runs, read_side_table, write_atomic
from vibench.sbc import uniformity

ALPHA = 0.05
PARAM_SEPARATOR = "::"
RUN_FIELDS = (
    "schema_version", "run_id", "task", "task_label", "task_version", "method",
    "method_version", "label", "config", "config_hash", "seed", "device", "git_commit",
    "host", "versions", "timestamp",
)
SBC_SCHEMA = pa.schema(
    [METRICS_SCHEMA.field(name) for name in RUN_FIELDS[:11]]
    + [
        ("replicate", pa.int64()),
        ("param", pa.string()),
        ("rank", pa.int64()),
        ("n_draws", pa.int64()),
    ]
    + [METRICS_SCHEMA.field(name) for name in RUN_FIELDS[11:]]
)
TEST_METRICS = ("sbc_chi2_pvalue", "sbc_ecdf_pvalue", "vsbc_pvalue")
TEST_COLUMNS = ("param", *TEST_METRICS, "holm_pvalue", "rejected")


@dataclass(frozen=True, eq=False)
class SBCOutcome:
    """One SBC run: its metric rows, ranks (R, P) and per-parameter tests.

    ``ranks`` is empty and ``tests`` has no rows unless ``run["status"]`` is ``ok``.
    ``tests`` has a row per parameter: its three p-values, ``holm_pvalue`` (the smaller
    Holm-adjusted uniformity p-value) and ``rejected`` (``holm_pvalue`` ≤ ``alpha``).
    """

    run: dict
    rows: list[dict]
    params: tuple[str, ...]
    ranks: np.ndarray
    n_draws: int
    tests: pd.DataFrame
    alpha: float

    @property
    def pvalue(self) -> float:
        """The family-wise p-value of uniformity over every parameter and both tests."""
        return float(self.tests["holm_pvalue"].min()) if len(self.tests) else math.nan

    @property
    def rejected(self) -> bool:
        return self.pvalue <= self.alpha


def uniformity_tests(
    ranks: np.ndarray, n_draws: int, params: tuple[str, ...], alpha: float = ALPHA
) -> pd.DataFrame:
    """Per parameter: the three p-values, ``holm_pvalue`` (Holm over both uniformity
    tests of every parameter; the smaller of this parameter's two) and ``rejected``."""
    columns = range(ranks.shape[1])
    chi2 = np.array([uniformity.chi2_pvalue(ranks[:, j], n_draws) for j in columns])
    ecdf = uniformity.ecdf_pvalue(ranks, n_draws)
    vsbc = np.array([uniformity.vsbc_pvalue(ranks[:, j], n_draws) for j in columns])
    holm = uniformity.holm(np.concatenate([chi2, ecdf])).reshape(2, -1).min(axis=0)
    return pd.DataFrame(
        {
            "param": list(params),
            "sbc_chi2_pvalue": chi2,
            "sbc_ecdf_pvalue": ecdf,
            "vsbc_pvalue": vsbc,
            "holm_pvalue": holm,
            "rejected": holm <= alpha,
        }
    )


def split_label(label: str) -> tuple[str, str | None]:
    """``"advi::beta[0]"`` -> ``("advi", "beta[0]")``; a method label -> ``(label, None)``."""
    method, sep, param = label.partition(PARAM_SEPARATOR)
    return method, (param if sep else None)


def sbc_table(outcome: SBCOutcome) -> pa.Table:
    """The rank table of an outcome: one row per replicate and parameter."""
    n_rep, n_par = outcome.ranks.shape
    columns = {name: [outcome.run[name]] * (n_rep * n_par) for name in RUN_FIELDS}
    columns["replicate"] = np.repeat(np.arange(n_rep), n_par)
    columns["param"] = np.tile(np.asarray(outcome.params, dtype=object), n_rep)
    columns["rank"] = outcome.ranks.reshape(-1)
    columns["n_draws"] = np.full(n_rep * n_par, outcome.n_draws)
    return pa.Table.from_pydict(columns, schema=SBC_SCHEMA)


def write_sbc(out: Path, outcome: SBCOutcome) -> Path | None:
    """Append the outcome's metric rows to ``out`` and its ranks to ``out/_sbc/``;
    returns the rank file (``None`` when the run has no ranks)."""
    out = Path(out)
    append_runs(out, outcome.rows, [])
    if not outcome.ranks.size:
        return None
    return write_atomic(sbc_table(outcome), out / SBC_DIR, f"sbc-{outcome.run['run_id'][:12]}")


def read_sbc(out: Path) -> pd.DataFrame:
    """The rank table of a results directory (empty if no SBC run was written)."""
    return read_side_table(out, SBC_DIR, SBC_SCHEMA)
