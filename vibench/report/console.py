"""The summary ``vibench run`` prints: one row per task × method, the headline metrics
present (their records say which), mean ± standard error, the runs that did not finish,
and a legend."""

from __future__ import annotations

import pandas as pd

from vibench.metrics.records import HEADLINE, record
from vibench.report.summary import elbo_gaps, failure_text, mean_and_se
from vibench.text import shorten

LEGEND = (
    "mean ± standard error: over seeds; with one seed, the estimate's own standard error "
    "(± 0: exact; ± nan: no valid standard error exists, e.g. importance weights of infinite "
    "variance)"
)


def _column(name: str) -> str:
    rec = record(name)
    better = {"higher": " ↑", "lower": " ↓"}.get(rec.direction or "", "")
    return f"{rec.title}{better}"


def run_summary(frame: pd.DataFrame) -> str:
    """The table of ``frame`` (the metric rows of one ``vibench run``) with its legend."""
    metrics = pd.concat([frame, elbo_gaps(frame)], ignore_index=True)
    ok = metrics[metrics["metric"].isin(HEADLINE) & (metrics["status"] == "ok")]
    shown = [m for m in HEADLINE if m in set(ok["metric"])]
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for (task, label, metric), group in ok.groupby(["task_label", "label", "metric"], sort=False):
        mean, se = mean_and_se(group["value"].to_numpy(), group["stderr"].to_numpy())
        cells.setdefault((task, label), {})[_column(metric)] = f"{mean:.4g} ± {se:.2g}"
    unfinished = frame[frame["status"] != "ok"].drop_duplicates("run_id")
    for _, row in unfinished.iterrows():
        cells.setdefault((row["task_label"], row["label"]), {})["status"] = shorten(
            f"seed {row['seed']} {failure_text(row['status'], row['error'])}", 120
        )
    table = pd.DataFrame.from_dict(cells, orient="index")
    columns = [_column(m) for m in shown] + (["status"] if "status" in table.columns else [])
    table = table.reindex(columns=columns).fillna("")
    table.index = [f"{task} / {label}" for task, label in table.index]
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 130):
        lines = [table.to_string(), "", LEGEND + "; ↑ higher is better, ↓ lower."]
    for name in shown:
        rec = record(name)
        lines.append(f"  {rec.title}: {rec.name}" + (f", in {rec.unit}" if rec.unit else ""))
    return "\n".join(lines)
