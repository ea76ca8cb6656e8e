"""The paper table on a small constructed store: mean ± standard error over seeds, the
best of each row by the metric's direction (bold only beyond standard errors, ties marked),
failures and k-hat warnings marked, tasks or methods in rows, devices kept apart."""

from __future__ import annotations

import io
import itertools
import math
from datetime import datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vibench.cli import main
from vibench.harness.store import METRICS_SCHEMA, SCHEMA_VERSION, append_runs
from vibench.metrics.records import HIGHER, LOWER, direction
from vibench.report.summary import TIE, cells, load_results
from vibench.report.tables import MAX_METHOD_COLUMNS, format_table, plain, split_number

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
CLOCK = itertools.count()  # runs are stamped in the order they are made


def runs(task: str, label: str, seeds, metrics: dict[str, tuple[list[float], float]], failed=(),
         device: str = "cpu:cpu") -> list[dict]:
    """Rows of one run per seed on ``device``: ``metrics[name] = (values by seed, stderr)``;
    seeds in ``failed`` get a failed row instead."""
    rows = []
    for i, seed in enumerate(seeds):
        base = {name: None for name in METRICS_SCHEMA.names}
        base.update(schema_version=SCHEMA_VERSION, kind="run", run_id=f"{task}-{label}-{seed}-{device}", task=task,
                    task_label=task, method=label, label=label, seed=seed, status="ok", device=device,
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
    # t2: -1 ± 0.5 against -2 ± 0.5 differ by 1 < 2·√(0.5² + 0.5²) ≈ 1.41: tied, neither bold
    assert table[4] == "| t2 | ELBO | -1.00 ± 0.50≈ | -2.00 ± 0.50≈ |  |  |  |"
    assert len(table) == 5  # no t2 × kl row: no method has it there
    assert "† some seeds failed or gave NaN: mean over the others" in text
    assert "‡" not in text
    assert "≈ tied for best within standard errors" in text


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
    assert ("t2 & ELBO & $-1.00 \\pm 0.50$\\textsuperscript{$\\approx$} & "
            "$-2.00 \\pm 0.50$\\textsuperscript{$\\approx$} &  &  &  \\\\") in rows
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
    best = table[table["best"] == "best"]
    assert set(zip(best["task"], best["metric"], best["method"])) == {("t1", "elbo", "e"), ("t1", "kl", "a")}
    tie = table[table["best"] == "tie"]
    assert set(zip(tie["task"], tie["metric"], tie["method"])) == {("t2", "elbo", "a"), ("t2", "elbo", "b")}
    assert set(table["best"].fillna("")) == {"best", "tie", ""}
    e = row.loc[("t1", "elbo", "e")]
    assert (e["n_seeds"], e["runs"], e["failed_runs"]) == (2, 3, 1)
    d = row.loc[("t1", "kl", "d")]
    assert math.isnan(d["mean"]) and d["failed_runs"] == 3 and pd.isna(d["best"])
    assert row.loc[("t1", "kl", "e"), "n_seeds"] == 0


def test_cli_table(store, capsys):
    assert main(["table", str(store), "--format", "markdown", "--metric", "elbo", "--metric", "kl"]) == 0
    assert capsys.readouterr().out == format_table(load_results(store), "markdown", ["elbo", "kl"]) + "\n"
    assert main(["table", str(store), "--metric", "nope"]) == 2
    assert "no metric 'nope'" in capsys.readouterr().err
    assert main(["table", str(store), "--format", "csv"]) == 0
    default = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(dict.fromkeys(default["metric"])) == ["elbo_gap", "khat"]  # the headline metrics present


# ------------------------------------------------------------------ layouts, ties, devices
def test_methods_in_rows(store):
    text = format_table(load_results(store), "markdown", ["elbo", "kl"], rows="method")
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == "| method | t1: ELBO | t1: KL(q‖p) | t2: ELBO |"
    assert table[1] == "| --- | ---: | ---: | ---: |"
    assert table[2] == "| a | -11.00 ± 0.58 | **0.200 ± 0.058** | -1.00 ± 0.50≈ |"
    assert table[5] == "| d | failed | failed |  |" and len(table) == 2 + 5
    latex = format_table(load_results(store), "latex", ["elbo", "kl"], rows="method").splitlines()
    assert "\\begin{tabular}{lrrr}" in latex
    assert " & \\multicolumn{2}{c}{t1} & \\multicolumn{1}{c}{t2} \\\\" in latex
    assert "\\cmidrule(lr){2-3} \\cmidrule(lr){4-4}" in latex
    assert "method & ELBO & $\\mathrm{KL}(q \\,\\|\\, p)$ & ELBO \\\\" in latex
    one_task = format_table(load_results(store), "markdown", ["elbo", "kl"], rows="method")
    single = [l for l in format_table(load_results(store), "markdown", ["elbo"], rows="method").splitlines()
              if l.startswith("|")]
    assert single[0] == "| method | t1 | t2 |" and one_task != single


def test_many_methods_go_in_rows_by_default(tmp_path):
    """More than MAX_METHOD_COLUMNS methods on one task and metric: methods in rows (a
    column per metric), not one column per method; few methods: methods in columns."""
    labels = [f"m{i}" for i in range(MAX_METHOD_COLUMNS + 1)]
    for i, label in enumerate(labels):
        metrics = {"khat": ([0.1 * i], 0.01), "time_fit_s": ([1.0 + i], 0.0)}
        append_runs(tmp_path, runs("t", label, [0], metrics), [])
    table = [l for l in format_table(load_results(tmp_path), "markdown").splitlines() if l.startswith("|")]
    assert table[0] == "| method | k̂ | fit time (s) |" and len(table) == 2 + len(labels)
    assert table[2] == "| m0 | **0.000 ± 0.010** | **1.000 ± 0** |"  # 0.1 apart > 2·√2·0.01
    few = tmp_path / "few"
    for label in labels[:MAX_METHOD_COLUMNS]:
        append_runs(few, runs("t", label, [0], {"khat": ([0.5], 0.01)}), [])
    header = format_table(load_results(few), "markdown").splitlines()[2]
    assert header == "| task | " + " | ".join(labels[:MAX_METHOD_COLUMNS]) + " |"


def test_a_lead_within_standard_errors_is_a_tie_not_a_win(tmp_path):
    """The issue's case: laplace's ELBO gap -1.9e-6 against exact's -1.7e-6, each with a
    Monte Carlo standard error of 1e-6: a difference of 0.2e-6 < 2·√2·1e-6, so neither is
    bold and both are tied; a third method 1e-4 away is neither."""
    for label, gap in (("exact", -1.7e-6), ("laplace", -1.9e-6), ("advi", 1e-4)):
        append_runs(tmp_path, runs("linreg", label, [0], {"elbo": ([-70.0 - gap], 1e-6), "log_px": ([-70.0], 0.0)}),
                    [])
    results = load_results(tmp_path)
    found = cells(results, ["elbo_gap"])
    assert [found[("linreg", m, "elbo_gap")].standing for m in ("exact", "laplace", "advi")] == [TIE, TIE, ""]
    text = format_table(results, "markdown", ["elbo_gap"])
    assert "**" not in text.split("\n", 1)[1] and text.count("≈") == 3  # two cells and the note
    assert "≈ tied for best within standard errors" in text


def test_runs_that_differ_only_by_device_are_kept_apart(tmp_path):
    """Same task, label and seed on cpu and on gpu: two entries, neither replacing the other;
    a rerun on the same device still replaces the earlier run."""
    append_runs(tmp_path, runs("t", "a", [0], {"time_fit_s": ([2.0], 0.0)}, device="cpu:cpu"), [])
    append_runs(tmp_path, runs("t", "a", [0], {"time_fit_s": ([0.5], 0.0)}, device="gpu:H200"), [])
    rerun = runs("t", "a", [0], {"time_fit_s": ([1.0], 0.0)}, device="gpu:H200")
    append_runs(tmp_path, [{**r, "run_id": "rerun"} for r in rerun], [])
    append_runs(tmp_path, runs("t", "b", [0], {"time_fit_s": ([3.0], 0.0)}), [])
    results = load_results(tmp_path)
    assert results.entries == ["a (cpu:cpu)", "a (gpu:H200)", "b"]
    found = cells(results, ["time_fit_s"])
    assert found[("t", "a (cpu:cpu)", "time_fit_s")].mean == 2.0
    assert found[("t", "a (gpu:H200)", "time_fit_s")].mean == 1.0  # the rerun
    assert found[("t", "a (gpu:H200)", "time_fit_s")].best
    csv = pd.read_csv(io.StringIO(format_table(results, "csv", ["time_fit_s"])))
    assert csv["method"].tolist() == ["a (cpu:cpu)", "a (gpu:H200)", "b"]


def test_cli_table_rows_and_bad_input(store, tmp_path, capsys):
    assert main(["table", str(store), "--rows", "method", "--metric", "elbo"]) == 0
    assert capsys.readouterr().out == format_table(load_results(store), "markdown", ["elbo"], "method") + "\n"
    with pytest.raises(SystemExit):
        main(["table", str(store), "--rows", "diagonal"])
    assert "invalid choice: 'diagonal'" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    pq.write_table(pa.table({"x": [1.0]}), foreign / "data.parquet")
    for path in (foreign, foreign / "data.parquet"):
        assert main(["table", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is not a vibench results directory" in err


def test_an_se_of_rounding_noise_does_not_print_thirteen_decimals():
    assert plain(split_number(0.25, 1.8e-12)) == "0.2500000 ± 0.0000000"
