"""The report's figures: accuracy against cost with the Pareto front, objective traces
across seeds, k-hat per method, and draws of each method over the reference draws on a
task of one or two dimensions (SBC figures come from :mod:`vibench.sbc.plots`).

Figures are built on matplotlib's Agg canvas without pyplot (no global state, no
display) and embedded in the HTML as base64 PNG, so a report makes no network request.
Text from plug-ins (method and task labels) has ``$`` escaped, so matplotlib never
reads it as mathtext.
"""

from __future__ import annotations

import base64
import io
import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vibench.metrics.records import title

PANEL = (4.6, 3.2)
MAX_TRACE_POINTS = 500
KHAT_LINES = ((0.5, "0.5: finite variance", ":"), (0.7, "0.7: PSIS unreliable above", "--"))
DPI = 100
DRAWS_PANEL = 2.8
DRAWS_COLUMNS = 4
DRAWS_TITLE_CHARS = 30
DRAWS_QUANTILES = (0.5, 99.5)
REFERENCE_COLOR = "0.55"


def text(label: str) -> str:
    """``label`` safe for matplotlib: ``$`` would start mathtext."""
    return label.replace("$", r"\$")


def data_uri(fig: Figure) -> str:
    """The figure as a ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(rows: int, cols: int) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(PANEL[0] * cols, PANEL[1] * rows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def _colors(labels: list[str]) -> dict[str, str]:
    return {label: f"C{i % 10}" for i, label in enumerate(labels)}


def _scale(ax, axis: str, values: np.ndarray) -> None:
    """Log scale for positive values; symmetric log (linear near 0) when some are 0."""
    finite = values[np.isfinite(values)]
    positive = finite[finite > 0]
    if not len(positive) or (finite < 0).any():
        return
    set_scale, set_lim = (ax.set_xscale, ax.set_xlim) if axis == "x" else (ax.set_yscale, ax.set_ylim)
    if (finite == 0).any():
        set_scale("symlog", linthresh=float(positive.min()))
        set_lim(0, None)
    elif positive.max() / positive.min() > 20:
        set_scale("log")


# ------------------------------------------------------------------ accuracy and cost
def pareto_front(cost: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Mask of the points no other point beats: none with cost ≤ and error ≤, one strictly.

    Lower is better on both axes; points with a non-finite coordinate are never on it.
    """
    cost, error = np.asarray(cost, float), np.asarray(error, float)
    finite = np.isfinite(cost) & np.isfinite(error)
    front = np.zeros(len(cost), bool)
    for i in np.flatnonzero(finite):
        no_worse = finite & (cost <= cost[i]) & (error <= error[i])
        better = (cost < cost[i]) | (error < error[i])
        front[i] = not (no_worse & better).any()
    return front


@dataclass(frozen=True)
class CostPoint:
    """A method's mean cost and accuracy on one task, over seeds."""

    label: str
    cost: dict[str, float]  # by cost metric
    error: float
    error_se: float


def accuracy_cost_figure(
    points: dict[str, list[CostPoint]], costs: tuple[str, ...], labels: list[str]
) -> Figure:
    """One row per accuracy metric (``points``' keys), one column per cost metric; the
    Pareto front of each panel drawn as a step line, its methods ringed."""
    fig, axes = _figure(len(points), len(costs))
    colors = _colors(labels)
    for row, (metric, pts) in zip(axes, points.items()):
        error = np.array([p.error for p in pts])
        se = np.array([p.error_se if np.isfinite(p.error_se) else 0.0 for p in pts])
        for ax, cost_metric in zip(row, costs):
            cost = np.array([p.cost.get(cost_metric, np.nan) for p in pts])
            for p, x, y, e in zip(pts, cost, error, se):
                ax.errorbar(x, y, yerr=e, fmt="o", color=colors[p.label], label=text(p.label), capsize=2)
            front = pareto_front(cost, error)
            order = np.argsort(cost[front])
            ax.step(cost[front][order], error[front][order], where="post", color="0.3", lw=1, zorder=0)
            ax.scatter(cost[front], error[front], s=160, facecolors="none", edgecolors="k", label="Pareto front")
            _scale(ax, "x", cost)
            _scale(ax, "y", error)
            ax.set_xlabel(title(cost_metric))
            ax.set_ylabel(f"{title(metric)} (lower is better)")
            ax.grid(alpha=0.3)
    handles, names = axes[0, 0].get_legend_handles_labels()
    unique = dict(zip(names, handles))
    fig.legend(unique.values(), unique.keys(), loc="outside right upper", fontsize=8)
    return fig


# ------------------------------------------------------------------ traces
def traces_figure(traces: pd.DataFrame, labels: list[str], bound: float | None) -> Figure:
    """One panel per objective: every seed's trace, coloured by method (``traces``'s
    ``entry``, see :mod:`vibench.report.summary`; at most
    :data:`MAX_TRACE_POINTS` points a line); ``bound`` (the exact log p(x)) is drawn
    on the ELBO-type panels it bounds. The y range starts at the lowest 5th percentile
    of the traces' second halves, so the first steps do not flatten the rest."""
    objectives = list(dict.fromkeys(traces["objective"]))
    fig, axes = _figure(1, len(objectives))
    colors = _colors(labels)
    for ax, objective in zip(axes[0], objectives):
        lows, highs = [], []
        for (label, _), line in traces[traces["objective"] == objective].groupby(["entry", "seed"], sort=False):
            line = line.sort_values("step")
            stride = max(1, len(line) // MAX_TRACE_POINTS)
            steps, values = line["step"].to_numpy()[::stride], line["value"].to_numpy()[::stride]
            ax.plot(steps, values, color=colors[label], alpha=0.7, lw=1, marker="." if len(steps) < 30 else None,
                    label=text(label))
            tail = values[len(values) // 2:]
            tail = tail[np.isfinite(tail)]
            if len(tail):
                lows.append(np.percentile(tail, 5))
                highs.append(np.nanmax(values[np.isfinite(values)]))
        if bound is not None and objective in ("elbo", "iwae_bound"):
            ax.axhline(bound, color="k", ls="--", lw=1, label="log p(x) (exact)")
            highs.append(bound)
        if lows:
            low, high = min(lows), max(highs)
            pad = 0.05 * (high - low) or 1.0
            ax.set_ylim(low - pad, high + pad)
        ax.set_title(text(objective))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        handles, names = ax.get_legend_handles_labels()
        unique = dict(zip(names, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7)
    return fig


# ------------------------------------------------------------------ k-hat
def khat_figure(khat: pd.DataFrame, labels: list[str]) -> Figure:
    """k-hat of every seed (dots) and its mean (bar) per method (``khat``'s ``entry``), with the 0.5 and 0.7
    thresholds (Vehtari et al. 2024)."""
    shown = [label for label in labels if label in set(khat["entry"])]
    fig, axes = _figure(1, 1)
    ax = axes[0, 0]
    fig.set_figwidth(max(PANEL[0], 0.8 * len(shown) + 2))
    colors = _colors(labels)
    for i, label in enumerate(shown):
        values = khat.loc[khat["entry"] == label, "value"].to_numpy()
        ax.bar(i, values.mean(), color=colors[label], alpha=0.4)
        ax.plot(np.full(len(values), i), values, "o", color=colors[label])
    for level, name, style in KHAT_LINES:
        ax.axhline(level, color="k", ls=style, lw=1, label=name)
    ax.set_xticks(range(len(shown)), [text(label) for label in shown], rotation=30, ha="right")
    ax.set_ylabel("k̂ (PSIS)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return fig


# ------------------------------------------------------------------ draws
@dataclass(frozen=True)
class DrawPanel:
    """A method's draws on one task: ``values`` (n, dim) from the run with ``seed``."""

    label: str
    seed: int
    values: np.ndarray


def draws_limits(samples: list[np.ndarray]) -> np.ndarray:
    """(dim, 2) axis limits shared by every panel: per coordinate, the
    :data:`DRAWS_QUANTILES` percentiles of every sample pooled (each sample weighted by
    its size), widened by 5% on each side; a few far draws do not shrink the rest."""
    pooled = np.concatenate([s[np.isfinite(s).all(axis=1)] for s in samples])
    low, high = np.percentile(pooled, DRAWS_QUANTILES, axis=0)
    pad = np.where(high > low, 0.05 * (high - low), 1.0)
    return np.stack([low - pad, high + pad], axis=1)


def draws_figure(panels: list[DrawPanel], reference: np.ndarray | None, labels: list[str]) -> Figure:
    """One small panel per method: its draws (in its colour) over the reference draws
    (grey; none when ``reference`` is None), every panel on the same axes. Two
    dimensions: a scatter of coordinate 1 against coordinate 0; one: histograms (density)
    on shared bins."""
    dim = panels[0].values.shape[1]
    limits = draws_limits([p.values for p in panels] + ([] if reference is None else [reference]))
    cols = min(len(panels), DRAWS_COLUMNS)
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(DRAWS_PANEL * cols, DRAWS_PANEL * rows + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    colors = _colors(labels)
    bins = np.linspace(*limits[0], 41)
    for ax, panel in zip(axes.flat, panels):
        if dim == 1:
            if reference is not None:
                ax.hist(reference[:, 0], bins=bins, density=True, color=REFERENCE_COLOR, alpha=0.5)
            ax.hist(panel.values[:, 0], bins=bins, density=True, histtype="step", lw=1.5,
                    color=colors[panel.label])
            ax.set_ylabel("density")
        else:
            if reference is not None:
                ax.scatter(reference[:, 0], reference[:, 1], s=3, color=REFERENCE_COLOR, alpha=0.5, lw=0)
            ax.scatter(panel.values[:, 0], panel.values[:, 1], s=3, color=colors[panel.label], alpha=0.7, lw=0)
            ax.set_ylim(*limits[1])
            ax.set_ylabel("z[1]")
        ax.set_xlim(*limits[0])
        ax.set_xlabel("z[0]")
        ax.set_title(textwrap.fill(f"{text(panel.label)} (seed {panel.seed})", DRAWS_TITLE_CHARS), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    whom = "grey: reference draws" if reference is not None else "no reference draws stored"
    fig.suptitle(f"{whom}; colour: the method's draws", fontsize=9)
    return fig
