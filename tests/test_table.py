"""The paper table on a small constructed store: mean ± standard error over seeds, the
best of each row by the metric's direction, failures and k-hat warnings marked."""

from __future__ import annotations

import io
import itertools
import math
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from vibench.cli import main
from vibench.harness.store import METRICS_SCHEMA, SCHEMA_VERSION, append_runs
from vibench.report.summary import load_results
from vibench.metrics.records import HIGHER, LOWER, direction
from vibench.report.tables import format_table, plain, split_number

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
CLOCK = itertools.count()  # runs are stamped in the order they are made


def runs(task: str, label: str, seeds, metrics: dict[str, tuple[list[float], float]], failed=()) -> list[dict]:
    """Rows of one run per seed: ``metrics[name] = (values by seed, stderr)``; seeds in
    ``failed`` get a failed row instead."""
    rows = []
    for i, seed in enumerate(seeds):
        base = {name: None for name in METRICS_SCHEMA.names}
        base.update(schema_version=SCHEMA_VERSION, run_id=f"{task}-{label}-{seed}", task=task,
                    task_label=task, method=label, label=label, seed=seed, status="ok",
                    timestamp=START + timedelta(seconds=next(CLOCK)))
        if seed in failed:
            rows.append({**base, "status": "failed", "error": "RuntimeError: boom | pipe",
                         "metric": "run", "value": math.nan, "stderr": math.nan})
            continue
        for metric, (values, stderr) in metrics.items():
            rows.append({**base, "metric": metric, "value": values[i], "stderr": stderr})
    return rows


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("table")
    append_runs(out, runs("t1", "a", [0, 1, 2], {
        "elbo": ([-10.0, -11.0, -12.0], 0.1), "log_px": ([0.0] * 3, 0.0), "kl": ([0.1, 0.2, 0.3], 0.0),
        "khat": ([0.9, 0.8, 1.0], 0.05), "khat_flag": ([2.0] * 3, 0.0)}), [])
    append_runs(out, runs("t1", "b", [0, 1, 2], {
        "elbo": ([-5.0, -5.5, -6.0], 0.1), "log_px": ([0.0] * 3, 0.0), "kl": ([1.0, 2.0, 3.0], 0.0),
        "khat": ([0.2, 0.3, 0.4], 0.05), "khat_flag": ([0.0] * 3, 0.0)}), [])
    append_runs(out, runs("t1", "my_method", [0], {"elbo": ([-20.0], 0.25), "kl": ([0.5], 0.0)}), [])
    append_runs(out, runs("t1", "d", [0, 1, 2], {}, failed=(0, 1, 2)), [])
    append_runs(out, runs("t1", "e", [0, 1, 2], {"elbo": ([-1.0, -3.0], 0.1)}, failed=(2,)), [])
    append_runs(out, runs("t2", "a", [0], {"elbo": ([-1.0], 0.5)}), [])
    append_runs(out, runs("t2", "b", [0], {"elbo": ([-2.0], 0.5)}), [])
    return out


# ------------------------------------------------------------------ numbers
@pytest.mark.parametrize(
    "mean, se, text",
    [
        (-717.3012, 0.1064, "-717.30 ± 0.11"),  # to the se's second significant digit
        (1.4e-6, 1.2e-7, "(1.40 ± 0.12)e-06"),  # a shared power of ten when small
        (2.5e7, 3e5, "(2.500 ± 0.030)e+07"),  # ... or large
        (12345.678, 0.0, "12346 ± 0"),  # exact: four significant digits
        (0.0123, math.nan, "0.01230 ± n/a"),  # no standard error exists
        (0.0, 0.0, "0 ± 0"),
        (math.nan, 1.0, "nan"),
    ],
)
def test_numbers(mean, se, text):
    assert plain(split_number(mean, se)) == text


def test_directions_are_defined_once_and_right():
    assert direction("elbo") == direction("log_px_is") == HIGHER
    for metric in ("kl", "khat", "mean_error", "std_error", "time_fit_s", "elbo_gap"):
        assert direction(metric) == LOWER
    assert direction("log_px") is None  # the exact evidence is the task's, not a method's
    assert direction("some_method_diagnostic") is None


# ------------------------------------------------------------------ formats
def test_markdown(store):
    text = format_table(load_results(store), "markdown", ["elbo", "kl"])
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == "| task | metric | a | b | my\\_method | d | e |"
    assert table[1] == "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    # elbo: higher is better; e's mean over its two ok seeds is best, marked † (a seed failed)
    assert table[2] == (
        "| t1 | ELBO | -11.00 ± 0.58 | -5.50 ± 0.29 | -20.00 ± 0.25 | failed | **-2.0 ± 1.0**† |"
    )
    # kl: lower is better; e has no kl (—), one seed of my_method: its own standard error
    assert table[3] == "| t1 | KL(q‖p) | **0.200 ± 0.058** | 2.00 ± 0.58 | 0.5000 ± 0 | failed | — |"
    assert table[4] == "| t2 | ELBO | **-1.00 ± 0.50** | -2.00 ± 0.50 |  |  |  |"
    assert len(table) == 5  # no t2 × kl row: no method has it there
    assert "† some seeds failed or gave NaN: mean over the others" in text
    assert "‡" not in text


def test_khat_warning_and_derived_elbo_gap(store):
    text = format_table(load_results(store), "markdown", ["elbo_gap", "khat"])
    assert "| t1 | log p(x) − ELBO | 11.00 ± 0.58 | **5.50 ± 0.29** |" in text  # lower is better
    assert "| t1 | k̂ | 0.900 ± 0.058‡ | **0.300 ± 0.058** |" in text
    assert "‡ k-hat unreliable in some seeds" in text


def test_single_metric_has_task_rows(store):
    lines = [l for l in format_table(load_results(store), "markdown", ["kl"]).splitlines() if l.startswith("|")]
    assert lines[0] == "| task | a | b | my\\_method | d | e |"
    assert lines[2].startswith("| t1 | **0.200 ± 0.058** |") and len(lines) == 3


def test_latex(store):
    text = format_table(load_results(store), "latex", ["elbo", "kl"])
    rows = text.splitlines()
    assert "\\begin{tabular}{llrrrrr}" in rows and "\\toprule" in rows and "\\bottomrule" in rows
    assert "task & metric & a & b & my\\_method & d & e \\\\" in rows
    assert ("t1 & ELBO & $-11.00 \\pm 0.58$ & $-5.50 \\pm 0.29$ & $-20.00 \\pm 0.25$ & failed & "
            "$\\mathbf{-2.0 \\pm 1.0}$\\textsuperscript{\\dag} \\\\") in rows
    assert ("t1 & $\\mathrm{KL}(q \\,\\|\\, p)$ & $\\mathbf{0.200 \\pm 0.058}$ & $2.00 \\pm 0.58$ & "
            "$0.5000 \\pm 0$ & failed & --- \\\\") in rows
    assert any(r.startswith("\\multicolumn{7}{l}{\\footnotesize \\textsuperscript{\\dag}") for r in rows)
    assert rows[-1] == "\\end{tabular}"


def test_csv_is_tidy_and_numeric(store):
    table = pd.read_csv(io.StringIO(format_table(load_results(store), "csv", ["elbo", "kl"])))
    row = table.set_index(["task", "metric", "method"])
    assert row.loc[("t1", "elbo", "b"), "mean"] == pytest.approx(-5.5)
    assert row.loc[("t1", "elbo", "b"), "se"] == pytest.approx(0.5 / math.sqrt(3))
    assert row.loc[("t1", "elbo", "my_method"), "se"] == pytest.approx(0.25)  # one seed: its own
    best = table[table["best"]]
    assert set(zip(best["task"], best["metric"], best["method"])) == {
        ("t1", "elbo", "e"), ("t1", "kl", "a"), ("t2", "elbo", "a")}
    e = row.loc[("t1", "elbo", "e")]
    assert (e["n_seeds"], e["runs"], e["failed_runs"]) == (2, 3, 1)
    d = row.loc[("t1", "kl", "d")]
    assert math.isnan(d["mean"]) and d["failed_runs"] == 3 and not d["best"]
    assert row.loc[("t1", "kl", "e"), "n_seeds"] == 0


def test_cli_table(store, capsys):
    assert main(["table", str(store), "--format", "markdown", "--metric", "elbo", "--metric", "kl"]) == 0
    assert capsys.readouterr().out == format_table(load_results(store), "markdown", ["elbo", "kl"]) + "\n"
    assert main(["table", str(store), "--metric", "nope"]) == 2
    assert "no metric 'nope'" in capsys.readouterr().err
    assert main(["table", str(store), "--format", "csv"]) == 0
    default = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(dict.fromkeys(default["metric"])) == ["elbo_gap", "khat"]  # the headline metrics present
