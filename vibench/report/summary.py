"""The numbers a report or paper table shows: results loaded, runs deduplicated, metrics
aggregated over seeds, each with the direction in which it is better.

A run is identified by :data:`RUN_IDENTITY` (task label, method label, seed, device,
precision). When the store holds runs with the same identity more than once (a rerun),
the latest counts. Runs that differ only by device are different runs: a method label
run on more than one device is shown as one *entry* per device, ``LABEL (DEVICE)``, and
the entries are aggregated, ranked and tabulated apart; so are runs in another precision
than the default float32, whose entries always say it: ``LABEL (float64)``, ``LABEL
(DEVICE, float64)``. SBC runs (``kind`` ``sbc``, failed ones included) are kept apart
from the benchmark runs (``kind`` ``run``); their ranks are in ``sbc_ranks``.

Aggregation is over a task × entry's ``ok`` runs: the mean over seeds, and its
standard error, the standard deviation over seeds over √n — with one seed, the
estimate's own standard error (0: exact; NaN: none exists). Failed and NaN runs are
counted and their errors kept, never averaged in.

The best of a task and metric (by :func:`vibench.metrics.records.direction`) is the
leading entry when it beats every other beyond their standard errors: ``|m₁ − m₂| >
SEPARATION · √(se₁² + se₂²)`` (about a 5% two-sided test of equal means). Otherwise the
leader and every entry it does not beat so are *tied* for best. A missing standard
error (NaN) never separates two entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from vibench.harness.precision import DEFAULT_PRECISION
from vibench.harness.store import NotResultsError, read_draws, read_metrics, read_reference_draws, read_traces
from vibench.metrics.records import HIDDEN, HIGHER, direction, metric_order
from vibench.sbc.records import PARAM_SEPARATOR, read_sbc

IMPORTANCE_METRICS = ("khat", "log_px_is")
"""Shown with a warning when k-hat is unreliable (``khat_flag`` 2): k-hat itself, and the
importance-sampling estimate it makes untrustworthy."""

KHAT_UNRELIABLE = 2.0

RUN_IDENTITY: tuple[str, ...] = ("task_label", "label", "seed", "device", "precision")
"""The columns identifying a run: of several runs equal in all of them, the latest counts.
A column added here keeps runs that differ in it apart everywhere."""
QUALIFIERS: tuple[str, ...] = tuple(c for c in RUN_IDENTITY if c not in ("task_label", "label", "seed"))
"""The identity columns beyond task, label and seed: what an entry's name adds to its label."""
SEPARATION = 2.0
"""How many standard errors of their difference the best mean must beat the others by."""
BEST, TIE = "best", "tie"


RUN_COLUMNS = (
    "run_id", "kind", "task", "task_label", "task_version", "method", "method_version", "label", "entry",
    "config", "seed", "status", "error", "stop_reason", "device", "precision", "git_commit", "host",
    "versions", "timestamp",
)


@dataclass(frozen=True, eq=False)
class Results:
    """A results directory, ready to present.

    ``metrics``: the benchmark runs' metric rows (latest run per :data:`RUN_IDENTITY`),
    each with its ``entry`` (see the module docstring), plus a derived ``elbo_gap`` row per run with both ``elbo`` and exact ``log_px``;
    ``runs``: one row per run (its metadata, no metric); ``traces`` and ``draws``: those
    runs' traces and kept draws; ``reference_draws``: the reference draws stored per task
    label and version (both empty for tasks of more than
    :data:`vibench.store.DRAWS_STORED_MAX_DIM` dimensions and for stores written before
    draws were kept); ``sbc_metrics`` / ``sbc_ranks``: SBC runs' method-level metric rows
    (the verdict, not the per-parameter p-values) and their ranks (both empty without
    SBC runs).
    """

    metrics: pd.DataFrame
    runs: pd.DataFrame
    traces: pd.DataFrame
    draws: pd.DataFrame
    reference_draws: pd.DataFrame
    sbc_metrics: pd.DataFrame
    sbc_ranks: pd.DataFrame

    @property
    def sbc_runs(self) -> pd.DataFrame:
        return self.sbc_metrics.drop_duplicates("run_id")[list(RUN_COLUMNS)].reset_index(drop=True)

    @property
    def tasks(self) -> list[str]:
        """Task labels (of benchmark or SBC runs) in the order they were first run."""
        return list(dict.fromkeys([*self.runs["task_label"], *self.sbc_runs["task_label"]]))

    @property
    def entries(self) -> list[str]:
        """Entries (method labels, with the device where one label ran on several) of the
        benchmark runs in the order they were first run."""
        return list(dict.fromkeys(self.runs["entry"]))


def load_results(directory: Path) -> Results:
    """Read and prepare the store at ``directory`` (see :func:`vibench.harness.store.read_metrics`
    for what is read); :class:`~vibench.harness.store.NotResultsError` if it holds no runs."""
    directory = Path(directory)
    table = read_metrics(directory)
    if table.empty:
        raise NotResultsError(f"no results in {str(directory)!r} (expected the --out folder of vibench run)")
    table = table.sort_values("timestamp", kind="stable")
    filled = ["error", "stop_reason", *QUALIFIERS]
    table[filled] = table[filled].fillna("")
    table = _latest(table[~table["label"].str.contains(PARAM_SEPARATOR, regex=False, na=False)])
    table["entry"] = table["run_id"].map(_entries(table.drop_duplicates("run_id")))
    is_sbc = table["kind"] == "sbc"
    metrics = table[~is_sbc].reset_index(drop=True)
    runs = metrics.drop_duplicates("run_id")[list(RUN_COLUMNS)].reset_index(drop=True)
    sbc_metrics = table[is_sbc].reset_index(drop=True)
    ranks = read_sbc(directory)
    entry = runs.set_index("run_id")["entry"]

    def of_runs(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame[frame["run_id"].isin(entry.index)].reset_index(drop=True)
        return frame.assign(entry=frame["run_id"].map(entry))

    return Results(
        metrics=pd.concat([metrics, elbo_gaps(metrics)], ignore_index=True),
        runs=runs,
        traces=of_runs(read_traces(directory)),
        draws=of_runs(read_draws(directory)),
        reference_draws=read_reference_draws(directory),
        sbc_metrics=sbc_metrics,
        sbc_ranks=ranks[ranks["run_id"].isin(set(sbc_metrics["run_id"]))].reset_index(drop=True),
    )


def _latest(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of the latest run per kind and :data:`RUN_IDENTITY`; ``table`` sorted by time."""
    runs = table.drop_duplicates("run_id")
    keep = runs.drop_duplicates(["kind", *RUN_IDENTITY], keep="last")["run_id"]
    return table[table["run_id"].isin(set(keep))].reset_index(drop=True)


def _entries(runs: pd.DataFrame) -> dict[str, str]:
    """``{run_id: entry}``: the run's label, qualified by each of its :data:`QUALIFIERS`
    in which runs of that label (and kind) differ, and by its precision wherever that is
    not the default."""
    entries = {}
    for _, group in runs.groupby(["kind", "label"], sort=False):
        shown = [c for c in QUALIFIERS if c != "precision" and group[c].nunique() > 1]
        columns = ["run_id", "label", "precision", *shown]
        for run_id, label, precision, *values in group[columns].itertuples(index=False):
            parts = [str(v) for v in values] + ([precision] if precision != DEFAULT_PRECISION else [])
            entries[run_id] = f"{label} ({', '.join(parts)})" if parts else label
    return entries


def elbo_gaps(metrics: pd.DataFrame) -> pd.DataFrame:
    """``log_px − elbo`` per run with both, its standard error from theirs (independent)."""
    elbo = metrics[metrics["metric"] == "elbo"].set_index("run_id")
    log_px = metrics[metrics["metric"] == "log_px"].set_index("run_id")
    both = elbo.index.intersection(log_px.index)
    gaps = elbo.loc[both].copy()
    gaps["metric"] = "elbo_gap"
    gaps["value"] = log_px.loc[both, "value"] - elbo.loc[both, "value"]
    gaps["stderr"] = np.hypot(log_px.loc[both, "stderr"], elbo.loc[both, "stderr"])
    return gaps.reset_index()


# ------------------------------------------------------------------ aggregation
@dataclass(frozen=True)
class Cell:
    """One task × entry × metric over seeds.

    ``mean`` / ``se`` / ``n`` are over the ``ok`` runs with this metric (``n`` 0: none);
    ``runs`` counts every run of the task × entry; ``failures`` holds ``status: error``
    of each failed or NaN run; ``unreliable`` counts runs whose k-hat is unreliable,
    for :data:`IMPORTANCE_METRICS`; ``standing``: :data:`BEST` (it beats every other
    entry of its task and metric beyond their standard errors), :data:`TIE` (tied for
    best within them) or ``""`` (see the module docstring).
    """

    mean: float
    se: float
    n: int
    runs: int
    failures: tuple[str, ...]
    unreliable: int
    standing: str = ""

    @property
    def best(self) -> bool:
        return self.standing == BEST

    @property
    def tied(self) -> bool:
        return self.standing == TIE

    @property
    def failed(self) -> bool:
        """Every run failed (or gave NaN)."""
        return self.runs > 0 and len(self.failures) == self.runs

    @property
    def applicable(self) -> bool:
        return self.n > 0


def mean_and_se(values: np.ndarray, stderrs: np.ndarray) -> tuple[float, float]:
    """Mean over seeds and its standard error (one seed: the estimate's own)."""
    if len(values) == 1:
        return float(values[0]), float(stderrs[0])
    return float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(len(values)))


def failure_text(status: str, error: str | None) -> str:
    word = "NaN" if status == "nan" else status
    return f"{word}: {error}" if error else word


def cells(results: Results, metrics: list[str] | None = None) -> dict[tuple[str, str, str], Cell]:
    """``{(task label, entry, metric): Cell}`` for every task × entry run and every
    metric in ``metrics`` (default: every metric present but :data:`HIDDEN`)."""
    table = results.metrics
    if metrics is None:
        metrics = metric_order(set(table["metric"]) - set(HIDDEN) - {"run"})
    ok = table[table["status"] == "ok"]
    unreliable_runs = set(ok.loc[(ok["metric"] == "khat_flag") & (ok["value"] >= KHAT_UNRELIABLE), "run_id"])
    grouped = {key: group for key, group in ok.groupby(["task_label", "entry", "metric"], sort=False)}
    found: dict[tuple[str, str, str], Cell] = {}
    for (task, entry), runs in results.runs.groupby(["task_label", "entry"], sort=False):
        bad = runs[runs["status"] != "ok"]
        failures = tuple(failure_text(s, e) for s, e in zip(bad["status"], bad["error"]))
        for metric in metrics:
            group = grouped.get((task, entry, metric))
            if group is None:
                mean, se, n, unreliable = math.nan, math.nan, 0, 0
            else:
                mean, se = mean_and_se(group["value"].to_numpy(), group["stderr"].to_numpy())
                n = len(group)
                unreliable = (
                    int(group["run_id"].isin(unreliable_runs).sum()) if metric in IMPORTANCE_METRICS else 0
                )
            found[(task, entry, metric)] = Cell(mean, se, n, len(runs), failures, unreliable)
    return _rank(found)


def separated(a: Cell, b: Cell) -> bool:
    """The means differ by more than :data:`SEPARATION` standard errors of their difference
    (never when a standard error is missing)."""
    return abs(a.mean - b.mean) > SEPARATION * math.hypot(a.se, b.se)


def _rank(found: dict[tuple[str, str, str], Cell]) -> dict[tuple[str, str, str], Cell]:
    """Set ``standing`` on the best, or the tied leaders, of each task and metric with a
    direction (among cells with a finite mean)."""
    contenders: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for key, cell in found.items():
        task, _, metric = key
        if direction(metric) is not None and cell.applicable and math.isfinite(cell.mean):
            contenders.setdefault((task, metric), []).append(key)
    ranked = dict(found)
    for (_, metric), keys in contenders.items():
        sign = 1.0 if direction(metric) == HIGHER else -1.0
        leader = found[max(keys, key=lambda k: sign * found[k].mean)]
        tied = [k for k in keys if not separated(leader, found[k])]  # the leader itself included
        standing = BEST if len(tied) == 1 else TIE
        for key in tied:
            ranked[key] = replace(found[key], standing=standing)
    return ranked
