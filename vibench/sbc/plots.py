"""Presenting an SBC run: a text summary, rank histograms and ECDF-difference plots.

The figures are built on matplotlib's Agg canvas without pyplot (no global state, no
display), so the CLI saves them as PNG and an HTML report can embed the same
:class:`matplotlib.figure.Figure` objects. With many parameters, the ones with the
smallest uniformity p-values are shown.

- Rank histogram (Talts et al. 2018, Fig. 2): the counts in the bins of the
  chi-square test, with the expected count and each bin's central 99% binomial
  interval under uniformity.
- ECDF difference (Säilynoja et al. 2022): ECDF of the ranks minus the uniform CDF at
  the test's evaluation points, drawn by ArviZ with its simultaneous 1 − α band
  (``confidence_bands="optimized"``: the band of the same γ statistic the ECDF test
  uses, so the curve leaves the band about when that test's p-value is below α).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from vibench.harness.store import SBC_DIR
from vibench.numerics.arviz import az
from vibench.sbc import uniformity
from vibench.sbc.records import SBCOutcome

PLOTS_DIR = "_plots"
MAX_PLOTTED = 16
PANEL_SIZE = (3.2, 2.4)


def shown_params(outcome: SBCOutcome, max_params: int) -> list[int]:
    """Column indices of the parameters to show: all, or the ``max_params`` with the
    smallest uniformity p-value (in parameter order)."""
    n_par = len(outcome.params)
    if n_par <= max_params:
        return list(range(n_par))
    smallest = outcome.tests[["sbc_chi2_pvalue", "sbc_ecdf_pvalue"]].min(axis=1).to_numpy()
    return sorted(np.argsort(smallest, kind="stable")[:max_params].tolist())


def format_summary(outcome: SBCOutcome, max_params: int = 20) -> str:
    """Per-parameter p-values (the ``max_params`` smallest when there are more) and the verdict."""
    run = outcome.run
    head = f"SBC of {run['label']} on {run['task_label']}"
    if run["status"] != "ok":
        return f"{head}: {run['status']}: {run['error']}"
    n_rep, n_par = outcome.ranks.shape
    lines = [f"{head}: {n_rep} replicates, {outcome.n_draws} draws, {n_par} parameters"]
    if n_par > max_params:
        lines.append(f"the {max_params} parameters with the smallest p-values:")
    table = outcome.tests.iloc[shown_params(outcome, max_params)].set_index("param")
    table = table[["sbc_chi2_pvalue", "sbc_ecdf_pvalue", "vsbc_pvalue", "holm_pvalue"]]
    table.columns = ["chi2 p", "ecdf p", "vsbc p", "holm p"]
    lines.append(table.to_string(float_format=lambda v: f"{v:.3g}"))
    rejected = outcome.tests.loc[outcome.tests["rejected"], "param"].tolist()
    tested = f"p {_pvalue(outcome.pvalue)}, Holm over {2 * n_par} uniformity tests, alpha {outcome.alpha:g}"
    if rejected:
        listed = ", ".join(rejected[:max_params]) + (" ..." if len(rejected) > max_params else "")
        lines.append(f"verdict: NOT CALIBRATED ({tested}); non-uniform: {listed}")
    else:
        lines.append(f"verdict: not rejected, ranks consistent with uniform ({tested})")
    return "\n".join(lines)


def _pvalue(p: float) -> str:
    """``= 0.031``, or ``< 1e-15`` below the resolution of a p-value computed as
    1 − P(accept) (:data:`vibench.uniformity.P_RESOLUTION`)."""
    return f"< {uniformity.P_RESOLUTION:g}" if p < uniformity.P_RESOLUTION else f"= {p:.2g}"


def _grid(n_panels: int) -> tuple[Figure, list]:
    cols = min(4, n_panels)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_axis_off()
    return fig, axes[:n_panels]


def _title(outcome: SBCOutcome, shown: int) -> str:
    run = outcome.run
    n_rep, n_par = outcome.ranks.shape
    of = f"{shown} of {n_par} parameters (smallest p-values)" if shown < n_par else f"{n_par} parameters"
    return f"SBC of {run['label']} on {run['task_label']}: {n_rep} replicates, {outcome.n_draws} draws, {of}"


def rank_histogram_figure(outcome: SBCOutcome, max_params: int = MAX_PLOTTED) -> Figure:
    """Rank histograms in the chi-square test's bins, with 99% bands under uniformity."""
    n_rep = outcome.ranks.shape[0]
    bins = uniformity.chi2_bins(n_rep, outcome.n_draws)
    edges = np.array([b[0] for b in bins] + [bins[-1][-1] + 1]) - 0.5
    expected = np.array([b.size for b in bins]) / (outcome.n_draws + 1)
    low, high = stats.binom.interval(0.99, n_rep, expected)
    columns = shown_params(outcome, max_params)
    fig, axes = _grid(len(columns))
    for ax, j in zip(axes, columns):
        ax.stairs(high, edges, baseline=low, fill=True, color="0.85")
        ax.hist(outcome.ranks[:, j], bins=edges, color="C0")
        ax.stairs(n_rep * expected, edges, baseline=None, color="0.3", linewidth=1)
        record = outcome.tests.iloc[j]
        ax.set_title(f"{record['param']}: chi2 p = {record['sbc_chi2_pvalue']:.2g}", fontsize=9)
        ax.set_xlabel("rank", fontsize=8)
    fig.suptitle(_title(outcome, len(columns)), fontsize=10)
    return fig


def ecdf_difference_figure(outcome: SBCOutcome, max_params: int = MAX_PLOTTED) -> Figure:
    """ECDF − uniform CDF of the ranks with ArviZ's simultaneous 1 − α band."""
    n_values = outcome.n_draws + 1
    points = uniformity.ecdf_thresholds(outcome.n_draws).astype(float)

    def uniform_cdf(x: np.ndarray) -> np.ndarray:
        return (np.floor(x) + 1) / n_values

    columns = shown_params(outcome, max_params)
    fig, axes = _grid(len(columns))
    for ax, j in zip(axes, columns):
        az.plot_ecdf(
            outcome.ranks[:, j],
            eval_points=points,
            cdf=uniform_cdf,
            difference=True,
            confidence_bands="optimized",
            ci_prob=1 - outcome.alpha,
            ax=ax,
            show=False,
        )
        record = outcome.tests.iloc[j]
        ax.set_title(f"{record['param']}: ecdf p {_pvalue(record['sbc_ecdf_pvalue'])}", fontsize=9)
        ax.set_xlabel("rank", fontsize=8)
    fig.suptitle(_title(outcome, len(columns)), fontsize=10)
    return fig


def save_plots(out: Path, outcome: SBCOutcome) -> list[Path]:
    """Both figures as PNG in ``out/_sbc/_plots/`` (skipped by Parquet discovery)."""
    directory = Path(out) / SBC_DIR / PLOTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    run = outcome.run
    stem = re.sub(r"[^\w.=,-]+", "_", f"{run['task_label']}--{run['label']}") + f"-{run['run_id'][:8]}"
    paths = []
    for kind, make in (("ranks", rank_histogram_figure), ("ecdf", ecdf_difference_figure)):
        path = directory / f"{stem}-{kind}.png"
        make(outcome).savefig(path, dpi=100)
        paths.append(path)
    return paths
