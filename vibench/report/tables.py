"""The paper table: mean ± standard error over seeds of each task × method (entry, see
:mod:`vibench.report.summary`) × metric, as LaTeX (booktabs), Markdown (GitHub tables)
or CSV.

Layout (``rows``): ``task`` puts tasks (× metrics, with several) in rows and methods in
columns; ``method`` puts methods in rows and tasks × metrics in columns (a header row
per task over its metrics in LaTeX, ``task: metric`` in Markdown). ``auto`` (the
default) is ``task`` unless that would give more than :data:`MAX_METHOD_COLUMNS` method
columns and ``method`` gives fewer columns: a default grid runs every method that
supports a task (a dozen or more), and a table with that many columns of ``mean ± se``
is wider than a page, while a tall one reads fine.

Best: in bold only when it beats every other method of its task and metric beyond their
standard errors (``|m₁ − m₂| > 2·√(se₁² + se₂²)``, :func:`vibench.report.summary.separated`);
when it does not, the leader and the methods within that margin of it are marked
:data:`TIED` ("tied for best within standard errors"), none in bold. CSV's ``best``
column says ``best``, ``tie`` or nothing.

A mean is printed to the decimal of its standard error's second significant digit (at most
7 significant digits of the mean)
(``-717.30 ± 0.11``); an exact value (standard error 0) or one without a standard
error to four significant digits; very small or large numbers share a power of ten
(``(1.40 ± 0.12)e-06``). CSV is tidy and numeric (one row per task, metric and
method) rather than formatted text.
"""

from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from vibench.metrics.records import HEADLINE, title
from vibench.report.summary import SEPARATION, Cell, Results, cells

Format = Literal["latex", "markdown", "csv"]

Layout = Literal["auto", "task", "method"]  # vibench.report.LAYOUTS
MAX_METHOD_COLUMNS = 6
"""Most method columns of an ``auto`` table with tasks in rows (about what fits a page)."""
TIED, PARTIAL, UNRELIABLE = "≈", "†", "‡"
NOTES = {
    TIED: "tied for best within standard errors: none beats the others by more than their errors",
    PARTIAL: "some seeds failed or gave NaN: mean over the others",
    UNRELIABLE: "k-hat unreliable in some seeds: importance-sampling estimates not to be trusted",
}
LATEX_MARKERS = {
    TIED: r"\textsuperscript{$\approx$}", PARTIAL: r"\textsuperscript{\dag}", UNRELIABLE: r"\textsuperscript{\ddag}",
}
SE_NOTE = "mean ± standard error over seeds (one seed: the estimate's own standard error; ± 0: exact)"
BEST_NOTE = f"bold: best, beating every other by more than {SEPARATION:g}·√(se₁² + se₂²)"
LATEX_BEST_NOTE = f"bold: best, beating every other by more than {SEPARATION:g} sqrt(se1^2 + se2^2)"
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
MAX_DIGITS = 7
"""Most significant digits of a mean in a table (float64 values carry no more that matter)."""
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
        if mean:  # at most MAX_DIGITS significant digits of the mean (an se of rounding noise)
            decimals = min(decimals, max(0, MAX_DIGITS - 1 - math.floor(math.log10(abs(mean)))))
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
class Line:
    """A row or column: the task, entry and metric it fixes (``None``: set by the other axis)."""

    task: str | None = None
    entry: str | None = None
    metric: str | None = None

    def key(self, other: Line) -> tuple[str, str, str]:
        return (self.task or other.task, self.entry or other.entry, self.metric or other.metric)


@dataclass(frozen=True)
class Grid:
    """The table before formatting: its rows and columns, the fields each one's header
    shows (``row_parts`` / ``column_parts``, of ``task``, ``entry``, ``metric``), and a
    cell per row and column (``None``: not run)."""

    rows: list[Line]
    columns: list[Line]
    row_parts: tuple[str, ...]
    column_parts: tuple[str, ...]
    cells: list[list[Cell | None]]
    metrics: list[str]


def task_lines(results: Results, found: dict, metrics: list[str]) -> list[Line]:
    """A line per task and metric, but those where no method has the metric and none failed."""
    return [
        Line(task=task, metric=metric)
        for task in results.tasks
        for metric in metrics
        if any(
            (c := found.get((task, entry, metric))) is not None and (c.applicable or c.failed)
            for entry in results.entries
        )
    ]


def layout_grid(results: Results, metrics: list[str], rows: Layout = "auto") -> Grid:
    """The grid of ``metrics`` in the layout ``rows`` (see the module docstring)."""
    found = cells(results, metrics)
    lines = task_lines(results, found, metrics)
    methods = [Line(entry=entry) for entry in results.entries]
    if rows == "auto":
        rows = "method" if len(methods) > MAX_METHOD_COLUMNS and len(lines) < len(methods) else "task"
    several_metrics = len({line.metric for line in lines}) > 1
    if rows == "task":
        row_lines, column_lines = lines, methods
        row_parts, column_parts = ("task", "metric") if several_metrics else ("task",), ("entry",)
    else:
        row_lines, column_lines = methods, lines
        several_tasks = len({line.task for line in lines}) > 1
        row_parts = ("entry",)
        column_parts = (("task",) if several_tasks or not several_metrics else ()) + (
            ("metric",) if several_metrics else ()
        )
    grid = [[found.get(r.key(c)) for c in column_lines] for r in row_lines]
    return Grid(row_lines, column_lines, row_parts, column_parts, grid, metrics)


def available_metrics(results: Results) -> list[str]:
    """Metrics a table can show: every metric with a value in some ok run."""
    return sorted(set(results.metrics.loc[results.metrics["status"] == "ok", "metric"]))


def format_table(results: Results, fmt: Format, metrics: list[str] | None = None, rows: Layout = "auto") -> str:
    """The paper table of ``metrics`` (default: the :data:`HEADLINE` metrics present),
    laid out by ``rows`` (CSV is tidy: one row per task, metric and method, whatever
    ``rows``)."""
    if metrics is None:
        present = set(available_metrics(results))
        metrics = [m for m in HEADLINE if m in present]
    grid = layout_grid(results, metrics, "task" if fmt == "csv" else rows)
    render = {"latex": _latex_table, "markdown": _markdown_table, "csv": _csv_table}[fmt]
    return render(grid)


def _markers(cell: Cell) -> str:
    return (TIED if cell.tied else "") + (PARTIAL if cell.failures else "") + (UNRELIABLE if cell.unreliable else "")


def _used_markers(grid: Grid) -> list[str]:
    used = {m for row in grid.cells for c in row if c is not None and c.applicable for m in _markers(c)}
    return [m for m in NOTES if m in used]


def _caption(grid: Grid) -> str:
    """The metric's title when the table shows one, the standard-error and bold notes."""
    one = "metric" not in grid.row_parts + grid.column_parts and grid.rows and grid.columns
    return (f"{title(grid.metrics[0])}: " if one else "") + f"{SE_NOTE}; {BEST_NOTE}"


HEADERS = {"task": "task", "entry": "method", "metric": "metric"}


def _markdown_text(line: Line, part: str) -> str:
    return markdown_escape(title(line.metric) if part == "metric" else getattr(line, part))


def _markdown_cell(cell: Cell | None) -> str:
    if cell is None:
        return ""
    if cell.failed:
        return "failed"
    if not cell.applicable:
        return "—"
    text = plain(split_number(cell.mean, cell.se))
    return (f"**{text}**" if cell.best else text) + _markers(cell)


def _markdown_table(grid: Grid) -> str:
    head = [HEADERS[p] for p in grid.row_parts] + [
        ": ".join(_markdown_text(c, p) for p in grid.column_parts) for c in grid.columns
    ]
    lead = len(grid.row_parts)
    lines = [
        markdown_escape(_caption(grid)),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join([" --- "] * lead + [" ---: "] * len(grid.columns)) + "|",
    ]
    for line, row in zip(grid.rows, grid.cells):
        first = [_markdown_text(line, p) for p in grid.row_parts]
        lines.append("| " + " | ".join(first + [_markdown_cell(c) for c in row]) + " |")
    lines += [f"\n{m} {NOTES[m]}" for m in _used_markers(grid)]
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


def _latex_text(line: Line, part: str) -> str:
    if part == "metric":
        return LATEX_TITLES.get(line.metric, latex_escape(title(line.metric)))
    return latex_escape(getattr(line, part))


def _latex_header(grid: Grid) -> list[str]:
    """The header rows: with tasks × metrics as columns, a row of tasks spanning their
    metrics (ruled under each), then the metrics."""
    names = [HEADERS[p] for p in grid.row_parts]
    lead = len(names)
    if len(grid.column_parts) < 2:
        part = grid.column_parts[0]
        return [" & ".join(names + [_latex_text(c, part) for c in grid.columns]) + r" \\"]
    spans, rules, start = [], [], lead + 1
    for task, group in itertools.groupby(grid.columns, key=lambda c: c.task):
        width = len(list(group))
        spans.append(f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(task)}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    return [
        " & ".join([""] * lead + spans) + r" \\",
        " ".join(rules),
        " & ".join(names + [_latex_text(c, "metric") for c in grid.columns]) + r" \\",
    ]


def _latex_table(grid: Grid) -> str:
    lead = len(grid.row_parts)
    width = lead + len(grid.columns)
    caption = _caption(grid).replace(SE_NOTE, SE_NOTE.replace("±", "+-")).replace(BEST_NOTE, LATEX_BEST_NOTE)
    lines = [
        "% requires \\usepackage{booktabs}; " + caption,
        f"\\begin{{tabular}}{{{'l' * lead}{'r' * len(grid.columns)}}}",
        "\\toprule",
        *_latex_header(grid),
        "\\midrule",
    ]
    for line, row in zip(grid.rows, grid.cells):
        first = [_latex_text(line, p) for p in grid.row_parts]
        lines.append(" & ".join(first + [_latex_cell(c) for c in row]) + r" \\")
    lines.append("\\bottomrule")
    for marker in _used_markers(grid):
        note = f"\\footnotesize {LATEX_MARKERS[marker]} {NOTES[marker]}"
        lines.append(f"\\multicolumn{{{width}}}{{l}}{{{note}}} \\\\")
    lines.append("\\end{tabular}")
    return "\n".join(lines)


def _csv_table(grid: Grid) -> str:
    records = [
        {
            "task": line.task,
            "metric": line.metric,
            "method": column.entry,
            "mean": cell.mean if cell.applicable else math.nan,
            "se": cell.se if cell.applicable else math.nan,
            "n_seeds": cell.n,
            "runs": cell.runs,
            "failed_runs": len(cell.failures),
            "unreliable_khat_runs": cell.unreliable,
            "best": cell.standing,
        }
        for line, row in zip(grid.rows, grid.cells)
        for column, cell in zip(grid.columns, row)
        if cell is not None
    ]
    buffer = io.StringIO()
    pd.DataFrame.from_records(records, columns=CSV_COLUMNS).to_csv(buffer, index=False)
    return buffer.getvalue()
