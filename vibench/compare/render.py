"""A comparison as text: a terminal table, Markdown for a pull-request comment, or a
JSON verdict for machines. Every format lists each judged row with its verdict, the
numbers behind it and why, plus what changed in the environment between the sides."""

from __future__ import annotations

import json
import math
from collections import Counter

from vibench.compare import FORMATS
from vibench.compare.pairing import Comparison, Row
from vibench.compare.verdict import (
    EXACT_METRICS,
    REGRESSED,
    RUN_METRIC,
    SBC_METRIC,
    SPEED_METRICS,
    UNCHANGED,
    VERDICTS,
    Side,
)
from vibench.metrics.records import record

HEADER = ("verdict", "task", "method", "device", "metric", "base", "new", "change", "why")


def _number(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.4g}"


def _side(metric: str, side: Side | None) -> str:
    if side is None:
        return ""
    if metric == RUN_METRIC:
        return f"{side.center:.0f}/{side.n} failed"
    if metric == SBC_METRIC:
        return f"{side.center:.0%} rejected (n={side.n})"
    if metric in SPEED_METRICS:
        return f"median {_number(side.center)} s (n={side.n})"
    if metric in EXACT_METRICS:
        return f"{_number(side.center)} (n={side.n})"
    return f"{_number(side.center)} ± {_number(side.se)} (n={side.n})"


def _change(row: Row) -> str:
    j = row.judgement
    if math.isnan(j.statistic):
        return ""
    if row.metric in SPEED_METRICS:
        p = "" if math.isnan(j.pvalue) else f", p={j.pvalue:.2g}"
        return f"×{j.statistic:.3g}{p}"
    if row.metric in EXACT_METRICS:
        return f"Δ={j.statistic:+g}"
    delta = j.new.center - j.base.center
    return f"Δ={delta:+.3g}, z={j.statistic:+.3g}"


def cells(row: Row) -> tuple[str, ...]:
    """The row's :data:`HEADER` fields as text."""
    j = row.judgement
    return (row.verdict, row.task, row.label, row.device, record(row.metric).name,
            _side(row.metric, j.base), _side(row.metric, j.new), _change(row), j.note)


def counts(rows: list[Row]) -> str:
    """``2 regressed, 1 drift, 30 unchanged`` (verdicts in :data:`VERDICTS` order)."""
    found = Counter(row.verdict for row in rows)
    return ", ".join(f"{found[v]} {v}" for v in VERDICTS if found[v]) or "nothing to compare"


def _headline(comparison: Comparison) -> str:
    word = "FAIL: regressions found" if comparison.exit_code else "OK: no regression"
    return f"{word} ({counts(comparison.rows)}); {comparison.base} → {comparison.new}"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return [line(HEADER), line(tuple("-" * w for w in widths)), *map(line, rows)]


def text(comparison: Comparison) -> str:
    lines = [_headline(comparison), ""]
    lines += _table([cells(r) for r in comparison.rows])
    if comparison.environment:
        lines += ["", "environment changed: " + "; ".join(comparison.environment)]
    return "\n".join(lines)


def _escape(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _markdown_table(rows: list[Row]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    return lines + ["| " + " | ".join(_escape(c) for c in cells(r)) + " |" for r in rows]


def markdown(comparison: Comparison) -> str:
    """For a pull-request comment: the rows that are not ``unchanged`` in a table, the
    unchanged ones folded away."""
    mark = "❌" if comparison.exit_code else "✅"
    lines = [f"### {mark} vibench compare", "", _escape(_headline(comparison)), ""]
    changed = [r for r in comparison.rows if r.verdict != UNCHANGED]
    same = [r for r in comparison.rows if r.verdict == UNCHANGED]
    if changed:
        lines += _markdown_table(changed) + [""]
    if same:
        lines += [f"<details><summary>{len(same)} unchanged</summary>", "", *_markdown_table(same), "",
                  "</details>", ""]
    if comparison.environment:
        lines += ["Environment changed: " + _escape("; ".join(comparison.environment)), ""]
    t = comparison.thresholds
    lines.append(f"Rules: accuracy |z| ≥ {t.z:g} and beyond each metric's tolerance; speed: median ratio "
                 f"beyond {t.factor:g}× and Mann–Whitney p < {t.alpha:g}.")
    return "\n".join(lines)


def _finite(x: float) -> float | str | None:
    if math.isnan(x):
        return None
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _side_json(side: Side | None) -> dict | None:
    return None if side is None else {"center": _finite(side.center), "se": _finite(side.se), "n": side.n}


def as_json(comparison: Comparison) -> str:
    t = comparison.thresholds
    rows = [
        {"verdict": r.verdict, "kind": r.kind, "task": r.task, "method": r.label, "device": r.device,
         "metric": r.metric, "base": _side_json(r.judgement.base), "new": _side_json(r.judgement.new),
         "statistic": _finite(r.judgement.statistic), "pvalue": _finite(r.judgement.pvalue),
         "note": r.judgement.note}
        for r in comparison.rows
    ]
    verdict = REGRESSED if comparison.exit_code else "ok"
    return json.dumps({
        "verdict": verdict, "exit_code": comparison.exit_code, "base": str(comparison.base),
        "new": str(comparison.new), "counts": dict(Counter(r.verdict for r in comparison.rows)),
        "thresholds": {"z": t.z, "factor": t.factor, "alpha": t.alpha},
        "environment_changes": comparison.environment, "rows": rows,
    }, indent=2, ensure_ascii=False)


RENDERERS = dict(zip(FORMATS, (text, markdown, as_json)))
