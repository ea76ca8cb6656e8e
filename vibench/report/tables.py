"""The paper table: tasks (× metrics) by methods, mean ± standard error over seeds, the
best of each row in bold, as LaTeX (booktabs), Markdown (GitHub tables) or CSV.

A mean is printed to the decimal of its standard error's second significant digit
(``-717.30 ± 0.11``); an exact value (standard error 0) or one without a standard
error to four significant digits; very small or large numbers share a power of ten
(``(1.40 ± 0.12)e-06``). CSV is tidy and numeric (one row per task, metric and
method, with a ``best`` column) rather than formatted text.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from vibench.report.summary import Cell, Results, cells
from vibench.metrics.records import HEADLINE, title

Format = Literal["latex", "markdown", "csv"]
FORMATS: tuple[str, ...] = ("latex", "markdown", "csv")
PARTIAL, UNRELIABLE = "†", "‡"
NOTES = {
    PARTIAL: "some seeds failed or gave NaN: mean over the others",
    UNRELIABLE: "k-hat unreliable in some seeds: importance-sampling estimates not to be trusted",
}
LATEX_MARKERS = {PARTIAL: r"\textsuperscript{\dag}", UNRELIABLE: r"\textsuperscript{\ddag}"}
SE_NOTE = "mean ± standard error over seeds (one seed: the estimate's own standard error; ± 0: exact)"
LATEX_TITLES = {
    "elbo_gap": r"$\log p(x) - \mathrm{ELBO}$",
    "log_px_is": r"$\log p(x)$ (IS)",
    "khat": r"$\hat{k}$",
    "kl": r"$\mathrm{KL}(q \,\|\, p)$",
}
LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
MARKDOWN_SPECIAL = set("\\`*_{}[]<>|#")
SMALL, LARGE = 1e-3, 1e6
CSV_COLUMNS = (
    "task", "metric", "method", "mean", "se", "n_seeds", "runs", "failed_runs", "unreliable_khat_runs", "best",
)


@dataclass(frozen=True)
class Number:
    """A mean and its standard error as digit strings, over a shared power of ten.

    ``se`` is ``None`` when no standard error exists; ``exponent`` is ``None`` when
    the numbers are printed without a power of ten.
    """

    mean: str
    se: str | None
    exponent: int | None


def split_number(mean: float, se: float) -> Number:
    """``mean`` and ``se`` rounded together (see the module docstring)."""
    if not math.isfinite(mean):
        return Number("nan" if math.isnan(mean) else ("inf" if mean > 0 else "-inf"), None, None)
    has_se = math.isfinite(se)
    magnitude = max(abs(mean), se if has_se else 0.0)
    exponent = None
    if magnitude and not SMALL <= magnitude < LARGE:
        exponent = math.floor(math.log10(magnitude))
        mean, se = mean / 10.0**exponent, se / 10.0**exponent
    if has_se and se > 0:
        decimals = max(0, 1 - math.floor(math.log10(se)))
        return Number(f"{mean:.{decimals}f}", f"{se:.{decimals}f}", exponent)
    decimals = max(0, 3 - math.floor(math.log10(abs(mean)))) if mean else 0
    return Number(f"{mean:.{decimals}f}", "0" if has_se else None, exponent)


def plain(number: Number) -> str:
    """``-717.30 ± 0.11``, ``(1.40 ± 0.12)e-06``, ``-700.1 ± n/a``."""
    if number.mean in ("nan", "inf", "-inf"):
        return number.mean
    body = f"{number.mean} ± {number.se if number.se is not None else 'n/a'}"
    return body if number.exponent is None else f"({body})e{number.exponent:+03d}"


def latex(number: Number, bold: bool) -> str:
    """The number in math mode (bold digits with ``\\mathbf``)."""
    if number.mean in ("nan", "inf", "-inf"):
        return {"nan": "NaN", "inf": r"$\infty$", "-inf": r"$-\infty$"}[number.mean]
    body = f"{number.mean} \\pm {number.se}" if number.se is not None else f"{number.mean} \\pm"
    if number.exponent is not None:
        body = f"({body}) \\times 10^{{{number.exponent}}}"
    math_text = f"$\\mathbf{{{body}}}$" if bold else f"${body}$"
    if number.se is None:
        math_text += "~" + (r"\textbf{n/a}" if bold else "n/a")
    return math_text


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def markdown_escape(text: str) -> str:
    return "".join(f"\\{ch}" if ch in MARKDOWN_SPECIAL else ch for ch in text)


# ------------------------------------------------------------------ the table
@dataclass(frozen=True)
class Row:
    task: str
    metric: str
    cells: tuple[Cell | None, ...]  # one per method; None: not run on this task


def table_rows(results: Results, metrics: list[str]) -> tuple[list[str], list[Row]]:
    """``(method labels, rows)``: a row per task and metric, skipping rows where no
    method has the metric and none failed."""
    found = cells(results, metrics)
    labels = results.labels
    rows = []
    for task in results.tasks:
        for metric in metrics:
            row = tuple(found.get((task, label, metric)) for label in labels)
            if any(c is not None and (c.applicable or c.failed) for c in row):
                rows.append(Row(task, metric, row))
    return labels, rows


def available_metrics(results: Results) -> list[str]:
    """Metrics a table can show: every metric with a value in some ok run."""
    return sorted(set(results.metrics.loc[results.metrics["status"] == "ok", "metric"]))


def format_table(results: Results, fmt: Format, metrics: list[str] | None = None) -> str:
    """The paper table of ``metrics`` (default: the :data:`HEADLINE` metrics present)."""
    if metrics is None:
        present = set(available_metrics(results))
        metrics = [m for m in HEADLINE if m in present]
    labels, rows = table_rows(results, metrics)
    render = {"latex": _latex_table, "markdown": _markdown_table, "csv": _csv_table}[fmt]
    return render(labels, rows, several=len(metrics) > 1)


def _markers(cell: Cell) -> str:
    return (PARTIAL if cell.failures else "") + (UNRELIABLE if cell.unreliable else "")


def _used_markers(rows: list[Row]) -> list[str]:
    used = {m for row in rows for c in row.cells if c is not None and c.applicable for m in _markers(c)}
    return [m for m in NOTES if m in used]


def _markdown_cell(cell: Cell | None) -> str:
    if cell is None:
        return ""
    if cell.failed:
        return "failed"
    if not cell.applicable:
        return "—"
    text = plain(split_number(cell.mean, cell.se))
    return (f"**{text}**" if cell.best else text) + _markers(cell)


def _markdown_table(labels: list[str], rows: list[Row], several: bool) -> str:
    head = ["task"] + (["metric"] if several else []) + [markdown_escape(m) for m in labels]
    caption = ("" if several or not rows else f"{title(rows[0].metric)}: ") + f"{SE_NOTE}; best in bold"
    lines = [
        markdown_escape(caption),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join([" --- "] * (len(head) - len(labels)) + [" ---: "] * len(labels)) + "|",
    ]
    for row in rows:
        first = [markdown_escape(row.task)] + ([markdown_escape(title(row.metric))] if several else [])
        lines.append("| " + " | ".join(first + [_markdown_cell(c) for c in row.cells]) + " |")
    lines += [f"\n{m} {NOTES[m]}" for m in _used_markers(rows)]
    return "\n".join(lines)


def _latex_cell(cell: Cell | None) -> str:
    if cell is None:
        return ""
    if cell.failed:
        return "failed"
    if not cell.applicable:
        return "---"
    markers = "".join(LATEX_MARKERS[m] for m in _markers(cell))
    return latex(split_number(cell.mean, cell.se), cell.best) + markers


def _latex_metric(metric: str) -> str:
    return LATEX_TITLES.get(metric, latex_escape(title(metric)))


def _latex_table(labels: list[str], rows: list[Row], several: bool) -> str:
    lead = 2 if several else 1
    head = ["task"] + (["metric"] if several else []) + [latex_escape(m) for m in labels]
    lines = [
        "% requires \\usepackage{booktabs}; " + SE_NOTE.replace("±", "+-") + "; best in bold",
        f"\\begin{{tabular}}{{{'l' * lead}{'r' * len(labels)}}}",
        "\\toprule",
        " & ".join(head) + r" \\",
        "\\midrule",
    ]
    for row in rows:
        first = [latex_escape(row.task)] + ([_latex_metric(row.metric)] if several else [])
        lines.append(" & ".join(first + [_latex_cell(c) for c in row.cells]) + r" \\")
    lines.append("\\bottomrule")
    for marker in _used_markers(rows):
        note = f"\\footnotesize {LATEX_MARKERS[marker]} {NOTES[marker]}"
        lines.append(f"\\multicolumn{{{len(head)}}}{{l}}{{{note}}} \\\\")
    lines.append("\\end{tabular}")
    return "\n".join(lines)


def _csv_table(labels: list[str], rows: list[Row], several: bool) -> str:
    records = [
        {
            "task": row.task,
            "metric": row.metric,
            "method": label,
            "mean": cell.mean if cell.applicable else math.nan,
            "se": cell.se if cell.applicable else math.nan,
            "n_seeds": cell.n,
            "runs": cell.runs,
            "failed_runs": len(cell.failures),
            "unreliable_khat_runs": cell.unreliable,
            "best": cell.best,
        }
        for row in rows
        for label, cell in zip(labels, row.cells)
        if cell is not None
    ]
    buffer = io.StringIO()
    pd.DataFrame.from_records(records, columns=CSV_COLUMNS).to_csv(buffer, index=False)
    return buffer.getvalue()

