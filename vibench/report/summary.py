"""The numbers a report or paper table shows: results loaded, runs deduplicated, metrics
aggregated over seeds, each with the direction in which it is better.

One run is one (task, method, seed). When the store holds the same (task label,
method label, seed) more than once (a rerun), the latest run counts. SBC runs (``kind``
``sbc``, failed ones included) are kept apart from the benchmark runs (``kind`` ``run``);
their ranks are in ``sbc_ranks``.

Aggregation is over a task × method's ``ok`` runs: the mean over seeds, and its
standard error, the standard deviation over seeds over √n — with one seed, the
estimate's own standard error (0: exact; NaN: none exists). Failed and NaN runs are
counted and their errors kept, never averaged in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from vibench.metrics.records import HIDDEN, HIGHER, direction, metric_order
from vibench.harness.store import read_draws, read_metrics, read_reference_draws, read_traces
from vibench.sbc.run import PARAM_SEPARATOR, read_sbc

IMPORTANCE_METRICS = ("khat", "log_px_is")
"""Shown with a warning when k-hat is unreliable (``khat_flag`` 2): k-hat itself, and the
importance-sampling estimate it makes untrustworthy."""

KHAT_UNRELIABLE = 2.0


RUN_COLUMNS = (
    "run_id", "kind", "task", "task_label", "task_version", "method", "method_version", "label",
    "config", "seed", "status", "error", "stop_reason", "device", "git_commit", "host",
    "versions", "timestamp",
)


@dataclass(frozen=True, eq=False)
class Results:
    """A results directory, ready to present.

    ``metrics``: the benchmark runs' metric rows (latest run per task, method label and
    seed) plus a derived ``elbo_gap`` row per run with both ``elbo`` and exact ``log_px``;
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
    def labels(self) -> list[str]:
        """Method labels of the benchmark runs in the order they were first run."""
        return list(dict.fromkeys(self.runs["label"]))


def load_results(directory: Path) -> Results:
    """Read and prepare the store at ``directory``; ``FileNotFoundError`` if it holds no runs."""
    directory = Path(directory)
    if not directory.is_dir() or not any(directory.glob("*.parquet")):
        raise FileNotFoundError(f"no results in {str(directory)!r} (expected the --out folder of vibench run)")
    table = read_metrics(directory).sort_values("timestamp", kind="stable")
    table[["error", "stop_reason"]] = table[["error", "stop_reason"]].fillna("")
    is_sbc = table["kind"] == "sbc"
    metrics = _latest(table[~is_sbc])
    runs = metrics.drop_duplicates("run_id")[list(RUN_COLUMNS)].reset_index(drop=True)
    sbc_metrics = _latest(table[is_sbc & ~table["label"].str.contains(PARAM_SEPARATOR, regex=False)])
    ranks = read_sbc(directory)
    kept = set(runs["run_id"])

    def of_runs(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["run_id"].isin(kept)].reset_index(drop=True)

    return Results(
        metrics=pd.concat([metrics, _elbo_gaps(metrics)], ignore_index=True),
        runs=runs,
        traces=of_runs(read_traces(directory)),
        draws=of_runs(read_draws(directory)),
        reference_draws=read_reference_draws(directory),
        sbc_metrics=sbc_metrics,
        sbc_ranks=ranks[ranks["run_id"].isin(set(sbc_metrics["run_id"]))].reset_index(drop=True),
    )


def _latest(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of the latest run per (task label, label, seed); ``table`` sorted by time."""
    runs = table.drop_duplicates("run_id")
    keep = runs.drop_duplicates(["task_label", "label", "seed"], keep="last")["run_id"]
    return table[table["run_id"].isin(set(keep))].reset_index(drop=True)


def _elbo_gaps(metrics: pd.DataFrame) -> pd.DataFrame:
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
    """One task × method × metric over seeds.

    ``mean`` / ``se`` / ``n`` are over the ``ok`` runs with this metric (``n`` 0: none);
    ``runs`` counts every run of the task × method; ``failures`` holds ``status: error``
    of each failed or NaN run; ``unreliable`` counts runs whose k-hat is unreliable,
    for :data:`IMPORTANCE_METRICS`; ``best``: the best mean of its task and metric.
    """

    mean: float
    se: float
    n: int
    runs: int
    failures: tuple[str, ...]
    unreliable: int
    best: bool

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
    """``{(task label, method label, metric): Cell}`` for every task × method run and every
    metric in ``metrics`` (default: every metric present but :data:`HIDDEN`)."""
    table = results.metrics
    if metrics is None:
        metrics = metric_order(set(table["metric"]) - set(HIDDEN) - {"run"})
    ok = table[table["status"] == "ok"]
    unreliable_runs = set(ok.loc[(ok["metric"] == "khat_flag") & (ok["value"] >= KHAT_UNRELIABLE), "run_id"])
    grouped = {key: group for key, group in ok.groupby(["task_label", "label", "metric"], sort=False)}
    found: dict[tuple[str, str, str], Cell] = {}
    for (task, label), runs in results.runs.groupby(["task_label", "label"], sort=False):
        bad = runs[runs["status"] != "ok"]
        failures = tuple(failure_text(s, e) for s, e in zip(bad["status"], bad["error"]))
        for metric in metrics:
            group = grouped.get((task, label, metric))
            if group is None:
                mean, se, n, unreliable = math.nan, math.nan, 0, 0
            else:
                mean, se = mean_and_se(group["value"].to_numpy(), group["stderr"].to_numpy())
                n = len(group)
                unreliable = (
                    int(group["run_id"].isin(unreliable_runs).sum()) if metric in IMPORTANCE_METRICS else 0
                )
            found[(task, label, metric)] = Cell(mean, se, n, len(runs), failures, unreliable, False)
    return _mark_best(found)


def _mark_best(found: dict[tuple[str, str, str], Cell]) -> dict[tuple[str, str, str], Cell]:
    """Set ``best`` on the cells with the best finite mean of each task and metric."""
    best: dict[tuple[str, str], float] = {}
    for (task, _, metric), cell in found.items():
        better = direction(metric)
        if better is None or not (cell.applicable and math.isfinite(cell.mean)):
            continue
        sign = 1.0 if better == HIGHER else -1.0
        best[(task, metric)] = max(best.get((task, metric), -math.inf), sign * cell.mean)
    marked = {}
    for key, cell in found.items():
        task, _, metric = key
        sign = 1.0 if direction(metric) == HIGHER else -1.0
        is_best = (task, metric) in best and cell.applicable and sign * cell.mean == best[(task, metric)]
        marked[key] = replace(cell, best=True) if is_best else cell
    return marked
