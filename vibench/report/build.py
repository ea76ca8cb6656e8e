"""``vibench report``: a static, self-contained HTML report of a results directory.

``OUT/index.html`` holds the overview (a task × method grid per headline metric of the
benchmark runs, SBC verdicts, failed benchmark and SBC runs, the environment the
numbers came from) and ``OUT/<task>.html`` one page per task (every metric, accuracy
against cost with the Pareto front, objective traces, k-hat, each method's draws over
the reference draws where the store kept them, SBC rank plots, the runs). Pages make no network request:
CSS is inline, figures are base64 PNG, there is no script, and a Content-Security-
Policy forbids anything else. Templates are Jinja2 with autoescaping on, so labels
and error texts from plug-ins show as text, never as markup.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from vibench.metrics.records import HEADLINE, HIDDEN, direction, metric_order, title
from vibench.report.figures import (
    DRAWS_QUANTILES,
    CostPoint,
    DrawPanel,
    accuracy_cost_figure,
    data_uri,
    draws_figure,
    khat_figure,
    pareto_front,
    traces_figure,
)
from vibench.report.summary import Cell, Results, cells, failure_text, load_results
from vibench.report.tables import TIED, plain, split_number
from vibench.sbc.plots import ecdf_difference_figure, format_summary, rank_histogram_figure
from vibench.sbc.records import ALPHA, SBCOutcome, uniformity_tests
from vibench.sbc.uniformity import P_RESOLUTION

ACCURACY_METRICS = ("mean_error", "std_error", "w1_sliced", "mode_mass_error")
COST_METRICS = ("grad_evals", "time_fit_s")
ERROR_CHARS = 200
SAFE_NAME = re.compile(r"[A-Za-z0-9_.=-]+")
KIND_NAMES = {"run": "benchmark", "sbc": "SBC"}
KIND_ANCHORS = {"run": "runs", "sbc": "sbc"}


def page_name(task_label: str) -> str:
    """A safe, unique file name for a task's page: the label when it is made of safe
    characters (and not ``index``), else its safe characters plus a hash of the label."""
    if SAFE_NAME.fullmatch(task_label) and task_label.lower() != "index" and not task_label.startswith("."):
        return f"{task_label}.html"
    stem = re.sub(r"[^A-Za-z0-9_.=-]+", "_", task_label).strip("._")[:60]
    return f"{stem}-{hashlib.sha256(task_label.encode()).hexdigest()[:10]}.html"


# ------------------------------------------------------------------ cells as HTML
@dataclass(frozen=True)
class CellView:
    """A cell as shown: its text, its warnings in words, and CSS classes for colour."""

    text: str
    notes: tuple[str, ...] = ()
    classes: str = ""


def _short(error: str) -> str:
    """An error's first line, at most :data:`ERROR_CHARS` long (the full text is in the runs table)."""
    line = error.strip().splitlines()[0] if error.strip() else error
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"


def cell_view(cell: Cell | None) -> CellView:
    if cell is None:
        return CellView("", classes="none")
    failures = tuple(_short(f) for f in dict.fromkeys(cell.failures))
    if cell.failed:
        word = "NaN" if all(f.startswith("NaN") for f in failures) else "failed"
        return CellView(word if cell.runs == 1 else f"{word} ({cell.runs} runs)", failures, "failed")
    if not cell.applicable:
        return CellView("—", classes="na")
    notes, classes = [], ["best"] if cell.best else ["tie"] if cell.tied else []
    if cell.failures:
        notes += [f"{len(cell.failures)} of {cell.runs} seeds failed — {f}" for f in failures]
        classes.append("partial")
    if cell.unreliable:
        notes.append(f"k̂ > τ: unreliable ({cell.unreliable} of {cell.n} seeds)")
        classes.append("unreliable")
    text = plain(split_number(cell.mean, cell.se)) + (TIED if cell.tied else "")
    return CellView(text, tuple(notes), " ".join(classes))


# ------------------------------------------------------------------ the pages
def _grid(found: dict, rows: list[str], columns: list[str], key) -> list[list[CellView]]:
    return [[cell_view(found.get(key(r, c))) for c in columns] for r in rows]


def _exact_log_px(results: Results, task: str) -> float | None:
    rows = results.metrics[(results.metrics["task_label"] == task) & (results.metrics["metric"] == "log_px")]
    return float(rows["value"].iloc[0]) if len(rows) else None


def _cost_points(found: dict, task: str, labels: list[str], metric: str) -> list[CostPoint]:
    points = []
    for label in labels:
        error = found.get((task, label, metric))
        if error is None or not error.applicable:
            continue
        cost = {c: found[(task, label, c)].mean for c in COST_METRICS if (task, label, c) in found}
        points.append(CostPoint(label, cost, error.mean, error.se))
    return points


def _pareto_table(points: dict[str, list[CostPoint]]) -> list[dict]:
    rows = []
    for metric, pts in points.items():
        error = np.array([p.error for p in pts])
        fronts = {}
        for cost in COST_METRICS:
            front = pareto_front(np.array([p.cost.get(cost, math.nan) for p in pts]), error)
            fronts[title(cost)] = ", ".join(p.label for p, on in zip(pts, front) if on)
        rows.append({"metric": title(metric), "fronts": fronts})
    return rows


def _wide(draws: pd.DataFrame) -> np.ndarray:
    """Long-format draws (``draw``, ``coordinate``, ``value``) as an (n, dim) array."""
    return draws.pivot(index="draw", columns="coordinate", values="value").sort_index(axis=1).to_numpy()


def _draws_panels(results: Results, task: str, labels: list[str]) -> tuple[list[DrawPanel], np.ndarray | None]:
    """Each method's kept draws of its first seed that has them (its first ``ok`` seed),
    and the reference draws stored for the task version of the page's latest run."""
    draws = results.draws[results.draws["task_label"] == task]
    panels = []
    for label in labels:
        mine = draws[draws["entry"] == label]
        if len(mine):
            seed = int(mine["seed"].min())
            panels.append(DrawPanel(label, seed, _wide(mine[mine["seed"] == seed])))
    if not panels:
        return [], None
    version = results.runs.loc[results.runs["task_label"] == task, "task_version"].iloc[-1]
    reference = results.reference_draws
    reference = reference[(reference["task_label"] == task) & (reference["task_version"] == version)]
    # Reference draws are stored once per task version, but runs in parallel may each write them.
    reference = reference.drop_duplicates(["draw", "coordinate"], keep="last")
    return panels, (_wide(reference) if len(reference) else None)


def _draws_caption(panels: list[DrawPanel], reference: np.ndarray | None) -> str:
    dim = panels[0].values.shape[1]
    low, high = DRAWS_QUANTILES
    shown = "coordinate 1 against coordinate 0" if dim == 2 else "histograms (density)"
    against = (f"over {len(reference)} draws from the task's reference posterior (grey)"
               if reference is not None else "(no reference draws are stored for this task version)")
    return (f"Up to {max(len(p.values) for p in panels)} draws of each method's approximation "
            f"(colour; from its first successful seed) {against}, in the task's unconstrained "
            f"coordinates: {shown}. Every panel has the same axes: the {low:g}–{high:g}% "
            "quantiles of all the draws shown, widened by 5%.")


def _sbc_outcomes(results: Results, task: str) -> list[tuple[dict, SBCOutcome | None]]:
    """Each SBC run on ``task`` with its outcome rebuilt from the stored ranks (``None``
    for a run without ranks: it failed or gave NaN)."""
    runs = results.sbc_runs[results.sbc_runs["task_label"] == task]
    ranks = results.sbc_ranks
    found = []
    for run in runs.to_dict("records"):
        table = ranks[ranks["run_id"] == run["run_id"]]
        if not len(table):
            found.append((run, None))
            continue
        params = tuple(dict.fromkeys(table["param"]))
        matrix = table.pivot(index="replicate", columns="param", values="rank")[list(params)].to_numpy()
        n_draws = int(table["n_draws"].iloc[0])
        tests = uniformity_tests(matrix, n_draws, params, ALPHA)
        found.append((run, SBCOutcome(run, [], params, matrix, n_draws, tests, ALPHA)))
    return found


def _sbc_section(results: Results, task: str) -> list[dict]:
    sections = []
    for run, outcome in _sbc_outcomes(results, task):
        section = {"label": run["entry"], "seed": run["seed"], "timestamp": _time(run["timestamp"])}
        if outcome is None:
            section["failure"] = failure_text(run["status"], run["error"])
        else:
            section["summary"] = format_summary(outcome)
            makers = (("rank histograms", rank_histogram_figure), ("ECDF differences", ecdf_difference_figure))
            section["figures"] = [
                {"alt": f"SBC {kind} of {run['entry']}", "src": data_uri(make(outcome))} for kind, make in makers
            ]
        sections.append(section)
    return sections


def _sbc_overview(results: Results) -> list[dict]:
    """Per SBC run: its verdict from the stored ``sbc_pvalue`` / ``sbc_rejected``."""
    values = results.sbc_metrics.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
    rows = []
    for run in results.sbc_runs.to_dict("records"):
        got = values.loc[run["run_id"]] if run["run_id"] in values.index else pd.Series(dtype=float)
        if run["status"] != "ok":
            verdict, classes = failure_text(run["status"], run["error"]), "failed"
        elif got.get("sbc_rejected", 0.0) >= 1.0:
            verdict, classes = "not calibrated: uniformity rejected", "failed"
        else:
            verdict, classes = "not rejected: ranks consistent with uniform", ""
        rows.append({
            "task": run["task_label"], "page": page_name(run["task_label"]), "label": run["entry"],
            "seed": run["seed"], "replicates": _count(got.get("sbc_replicates")),
            "draws": _count(got.get("sbc_draws")), "pvalue": _pvalue(got.get("sbc_pvalue")),
            "verdict": _short(verdict), "classes": classes,
        })
    return rows


def _count(value) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.0f}"


def _pvalue(value) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"< {P_RESOLUTION:g}" if value < P_RESOLUTION else f"{value:.3g}"


def _time(stamp) -> str:
    return pd.Timestamp(stamp).strftime("%Y-%m-%d %H:%M:%S UTC")


def _runs_table(runs: pd.DataFrame) -> list[dict]:
    return [
        {
            "label": r["label"], "seed": r["seed"], "status": r["status"],
            "classes": "" if r["status"] == "ok" else "failed",
            "error": r["error"], "stop_reason": r["stop_reason"], "config": r["config"],
            "device": r["device"], "commit": (r["git_commit"] or "")[:12], "timestamp": _time(r["timestamp"]),
        }
        for r in runs.to_dict("records")
    ]


def environment_rows(results: Results) -> list[dict]:
    """One row per distinct (device, host, commit, versions), with its runs' time span."""
    runs = pd.concat([results.runs, results.sbc_runs], ignore_index=True)
    rows = []
    for (device, host, commit, versions), group in runs.groupby(
        ["device", "host", "git_commit", "versions"], sort=False, dropna=False
    ):
        packages = json.loads(versions) if isinstance(versions, str) and versions else {}
        rows.append({
            "device": device, "host": host, "commit": commit, "runs": len(group),
            "versions": [f"{name} {version}" for name, version in sorted(packages.items()) if version],
            "first": _time(group["timestamp"].min()), "last": _time(group["timestamp"].max()),
        })
    return rows


def _headline(results: Results, found: dict) -> list[dict]:
    present = {m for (_, _, m), c in found.items() if c.applicable}
    labels = results.entries
    return [
        {
            "metric": metric, "title": title(metric), "better": direction(metric) or "",
            "labels": labels,
            "rows": list(zip(
                [(task, page_name(task)) for task in results.tasks],
                _grid(found, results.tasks, labels, lambda t, m, metric=metric: (t, m, metric)),
            )),
        }
        for metric in HEADLINE
        if metric in present
    ]


def _task_page(results: Results, found: dict, task: str) -> dict:
    runs = results.runs[results.runs["task_label"] == task]
    labels = list(dict.fromkeys(runs["entry"]))
    metrics = metric_order({m for (t, _, m), c in found.items() if t == task and c.applicable} - set(HIDDEN))
    points = {m: pts for m in ACCURACY_METRICS if len(pts := _cost_points(found, task, labels, m))}
    traces = results.traces[results.traces["task_label"] == task]
    khat = results.metrics[
        (results.metrics["task_label"] == task) & (results.metrics["metric"] == "khat")
        & (results.metrics["status"] == "ok")
    ]
    log_px = _exact_log_px(results, task)
    figures = []
    if points:
        figures.append({
            "id": "cost", "heading": "Accuracy against cost",
            "caption": "Mean over seeds (error bars: standard error); ringed methods and the step "
                       "line: the Pareto front (no method is cheaper and more accurate).",
            "src": data_uri(accuracy_cost_figure(points, COST_METRICS, labels)),
            "pareto": _pareto_table(points),
        })
    if len(traces):
        figures.append({
            "id": "traces", "heading": "Objective traces",
            "caption": "Every seed's objective per step (the dashed line: the exact log p(x), "
                       "which bounds the ELBO and the IWAE bound).",
            "src": data_uri(traces_figure(traces, labels, log_px)),
        })
    if len(khat):
        figures.append({
            "id": "khat", "heading": "Pareto k̂ per method",
            "caption": "PSIS k̂ of q as a proposal for the posterior, per seed (dots) and mean "
                       "(bar); above τ = min(1 − 1/log₁₀ S, 0.7) importance sampling is unreliable.",
            "src": data_uri(khat_figure(khat, labels)),
        })
    panels, reference = _draws_panels(results, task, labels)
    if panels:
        figures.append({
            "id": "draws", "heading": "Posterior draws",
            "caption": _draws_caption(panels, reference),
            "src": data_uri(draws_figure(panels, reference, labels)),
        })
    return {
        "task": task,
        "versions": ", ".join(sorted(set(runs["task_version"].dropna()))),
        "log_px": None if log_px is None else f"{log_px:.6g}",
        "metrics": [(m, title(m), direction(m) or "") for m in metrics],
        "rows": list(zip(labels, _grid(found, labels, metrics, lambda label, m: (task, label, m)))),
        "figures": figures,
        "sbc": _sbc_section(results, task),
        "runs": _runs_table(runs),
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("vibench.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def build_report(directory: Path, out: Path) -> list[Path]:
    """Write the report of the results at ``directory`` to ``out``; returns the pages
    written, ``index.html`` first."""
    results = load_results(directory)
    found = cells(results)
    env = _environment()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    common = {
        "source": str(directory),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "tasks": [(task, page_name(task)) for task in results.tasks],
    }
    runs = pd.concat([results.runs, results.sbc_runs], ignore_index=True)
    index = env.get_template("index.html.j2").render(
        **common,
        headline=_headline(results, found),
        sbc=_sbc_overview(results),
        failed=_failed_rows(runs[runs["status"] != "ok"]),
        environment=environment_rows(results),
    )
    pages = [_write(out / "index.html", index)]
    task_template = env.get_template("task.html.j2")
    for task in results.tasks:
        page = task_template.render(**common, **_task_page(results, found, task))
        pages.append(_write(out / page_name(task), page))
    return pages


def _failed_rows(failed: pd.DataFrame) -> list[dict]:
    """Failed and NaN runs, benchmark or SBC (``kind``), each linked to its section."""
    return [
        {"task": r["task_label"], "kind": KIND_NAMES[r["kind"]], "label": r["entry"], "seed": r["seed"],
         "error": failure_text(r["status"], r["error"]),
         "page": f"{page_name(r['task_label'])}#{KIND_ANCHORS[r['kind']]}"}
        for r in failed.to_dict("records")
    ]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
