"""vibench compare, the CI regression gate: planted accuracy and speed regressions are
caught, noise is not, environment drift and version changes are told apart, and bad
input is a one-line error."""

from __future__ import annotations

import json
import math
import textwrap
from datetime import datetime, timezone
from itertools import count
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from vibench.cli import main
from vibench.compare.pairing import compare
from vibench.compare.verdict import (
    DRIFT,
    IMPROVED,
    INCOMPARABLE,
    REGRESSED,
    TOO_FEW,
    UNCHANGED,
    Thresholds,
    accuracy,
    smallest_pvalue,
)
from vibench.harness.store import METRICS_SCHEMA, append_runs
from vibench.harness.timings import append_timings, read_timings, timing_rows

VERSIONS = {"jax": "0.10.2", "numpyro": "0.22.0", "vibench": "0.1.0"}
_ids = count()


def run_rows(seed: int, metrics: dict[str, tuple[float, float]], *, label: str = "advi",
             task_version: str = "1", versions: dict = VERSIONS, status: str = "ok",
             device: str = "cpu:cpu", kind: str = "run", host: str = "ci") -> list[dict]:
    """The metric rows of one hand-made run (``metrics``: ``{name: (value, stderr)}``)."""
    base = {name: None for name in METRICS_SCHEMA.names}
    base.update(
        schema_version=2, kind=kind, run_id=f"run{next(_ids)}", task="linreg", task_label="linreg",
        task_version=task_version, method=label.split("[")[0], method_version="1", label=label,
        seed=seed, status=status, error=None if status == "ok" else "boom", device=device, host=host,
        git_commit="abc", versions=json.dumps(versions), timestamp=datetime.now(timezone.utc),
    )
    if status != "ok":
        return [{**base, "metric": "run", "value": math.nan, "stderr": math.nan}]
    return [{**base, "metric": m, "value": v, "stderr": s} for m, (v, s) in metrics.items()]


def write_side(out: Path, rng: np.random.Generator, *, seeds: int = 5, elbo: float = -77.8,
               elbo_sd: float = 0.1, fit_s: float = 0.02, repeats: int = 10, **run) -> Path:
    """A results directory of ``seeds`` hand-made ADVI runs: ELBO and k-hat drawn around
    their centers (seed-to-seed spread ``elbo_sd``), fit times log-normal around
    ``fit_s`` (5% spread) with ``repeats`` timings per seed, compile time and gradient
    evaluations fixed."""
    rows, timings = [], []
    for seed in range(seeds):
        times = fit_s * np.exp(0.05 * rng.standard_normal(repeats))
        metrics = {
            "elbo": (elbo + elbo_sd * rng.standard_normal(), 0.03),
            "khat": (0.5 + 0.03 * rng.standard_normal(), 0.02),
            "time_fit_s": (float(times[0]), 0.0),
            "time_compile_s": (1.0, 0.0),
            "grad_evals": (16000.0, 0.0),
        }
        found = run_rows(seed, metrics, **run)
        rows += found
        ids = {k: found[0][k] for k in ("run_id", "task_label", "label", "seed")}
        timings += timing_rows(ids, times.tolist())
    append_runs(out, rows, [])
    append_timings(out, timings)
    return out


def verdicts(comparison, metric: str) -> set[str]:
    return {row.verdict for row in comparison.rows if row.metric == metric}


# ------------------------------------------------------------------ the rules
def test_smallest_rank_test_pvalue_matches_the_exact_test():
    """5 against 5 cannot reach p < 0.002 (smallest 2/252 ≈ 0.0079); 7 against 7 can."""
    for n in (5, 7):
        exact = stats.mannwhitneyu(np.arange(n) + 100.0, np.arange(n), method="exact").pvalue
        assert smallest_pvalue(n, n) == pytest.approx(exact)
    assert smallest_pvalue(5, 5) == pytest.approx(2 / 252) and smallest_pvalue(5, 5) > 0.002
    assert smallest_pvalue(6, 6) > 0.002 > smallest_pvalue(7, 7)


def test_a_certain_change_within_the_tolerance_is_unchanged():
    """0.01 nats of ELBO at z ≈ 30: certain, but below the 0.05-nat tolerance."""
    base = (np.full(5, -10.0) + np.array([0, 1e-3, -1e-3, 5e-4, -5e-4]), np.zeros(5))
    new = (base[0] - 0.01, base[1])
    judged = accuracy("elbo", base, new, Thresholds())
    assert judged.verdict == UNCHANGED and abs(judged.statistic) > 4
    worse = accuracy("elbo", base, (base[0] - 0.06, base[1]), Thresholds())
    assert worse.verdict == REGRESSED
    assert accuracy("elbo", (base[0] - 0.06, base[1]), base, Thresholds()).verdict == IMPROVED


def test_one_seed_per_side_uses_each_rows_own_standard_error():
    one = accuracy("elbo", (np.array([-10.0]), np.array([0.05])), (np.array([-10.5]), np.array([0.05])),
                   Thresholds())
    assert one.verdict == REGRESSED and one.statistic == pytest.approx(-0.5 / math.hypot(0.05, 0.05))
    none = accuracy("elbo", (np.array([-10.0]), np.array([math.nan])), (np.array([-10.5]), np.array([0.05])),
                    Thresholds())
    assert none.verdict == TOO_FEW


# ------------------------------------------------------------------ planted regressions (hand-made rows)
def test_an_elbo_worse_by_half_a_nat_is_a_regression_naming_the_row(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = write_side(tmp_path / "base", rng, seeds=8, elbo_sd=0.1)
    new = write_side(tmp_path / "new", rng, seeds=8, elbo=-78.3, elbo_sd=0.3)
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("regressed"))
    assert "linreg" in line and "advi" in line and " elbo " in line
    comparison = compare(base, new)
    assert verdicts(comparison, "elbo") == {REGRESSED}
    assert verdicts(comparison, "khat") == verdicts(comparison, "time_fit_s") == {UNCHANGED}


def test_a_fit_slower_by_half_is_a_speed_regression(tmp_path, capsys):
    rng = np.random.default_rng(1)
    base = write_side(tmp_path / "base", rng, fit_s=0.02)
    new = write_side(tmp_path / "new", rng, fit_s=0.03)
    assert main(["compare", str(base), str(new), "--format", "json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["verdict"] == REGRESSED and verdict["exit_code"] == 1
    [row] = [r for r in verdict["rows"] if r["verdict"] == REGRESSED]
    assert (row["method"], row["metric"]) == ("advi", "time_fit_s")
    assert row["statistic"] == pytest.approx(1.5, rel=0.05) and row["pvalue"] < 0.002
    assert row["base"]["n"] == row["new"]["n"] == 50  # every repeated timing, 5 seeds x 10


def test_five_timings_against_five_are_too_few_to_judge(tmp_path):
    rng = np.random.default_rng(2)
    base = write_side(tmp_path / "base", rng, repeats=1)
    new = write_side(tmp_path / "new", rng, repeats=1, fit_s=0.03)
    comparison = compare(base, new)
    assert verdicts(comparison, "time_fit_s") == {TOO_FEW} and comparison.exit_code == 0
    assert read_timings(base).empty  # one timing per seed: no side table


def test_same_distribution_twenty_times_never_fails(tmp_path):
    """Two sides drawn from one distribution: 20 comparisons, none exits 1 (the false-alarm
    rate of the whole gate over 5 judged metrics; see the next test for its size)."""
    rng = np.random.default_rng(3)
    codes = []
    for trial in range(20):
        base = write_side(tmp_path / f"base{trial}", rng)
        new = write_side(tmp_path / f"new{trial}", rng)
        codes.append(compare(base, new).exit_code)
    assert codes == [0] * 20


def test_false_alarm_rate_of_the_accuracy_rule_is_small():
    """The z ≥ 4 rule alone, on 5 seeds a side of a metric whose seed spread (0.1 nats)
    dwarfs no tolerance: under the null the Welch z is about t with 8 degrees of freedom,
    P(|t₈| ≥ 4) ≈ 0.004; with the 0.05-nat tolerance a false alarm needs both. Measured
    over 20 000 null comparisons."""
    rng = np.random.default_rng(4)
    tries = 20_000
    base = -77.8 + 0.1 * rng.standard_normal((tries, 5))
    new = -77.8 + 0.1 * rng.standard_normal((tries, 5))
    z = (new.mean(1) - base.mean(1)) / np.sqrt(new.var(1, ddof=1) / 5 + base.var(1, ddof=1) / 5)
    by_z = np.mean(np.abs(z) >= 4)
    both = np.mean((np.abs(z) >= 4) & (np.abs(new.mean(1) - base.mean(1)) > 0.05))
    t8 = 2 * stats.t.sf(4, 8)
    assert abs(by_z - t8) < 5 * math.sqrt(t8 / tries) + 0.001
    assert both <= by_z
    print(f"false alarms: |z| >= 4 alone {by_z:.4%}, with the tolerance {both:.4%}")


# ------------------------------------------------------------------ environment and versions
def test_a_jax_version_change_turns_a_slowdown_into_drift(tmp_path):
    rng = np.random.default_rng(5)
    base = write_side(tmp_path / "base", rng)
    new = write_side(tmp_path / "new", rng, fit_s=0.03, versions={**VERSIONS, "jax": "0.10.3"})
    comparison = compare(base, new)
    assert verdicts(comparison, "time_fit_s") == {DRIFT} and comparison.exit_code == 0
    [row] = [r for r in comparison.rows if r.verdict == DRIFT]
    assert "package jax 0.10.2 → 0.10.3" in row.judgement.note
    assert "package jax 0.10.2 → 0.10.3" in comparison.environment
    assert verdicts(comparison, "elbo") == {UNCHANGED}  # accuracy is still judged


def test_a_vibench_version_change_is_the_code_under_test_not_drift(tmp_path):
    rng = np.random.default_rng(6)
    base = write_side(tmp_path / "base", rng)
    new = write_side(tmp_path / "new", rng, fit_s=0.03, versions={**VERSIONS, "vibench": "0.2.0"})
    assert verdicts(compare(base, new), "time_fit_s") == {REGRESSED}


def test_a_task_version_change_is_incomparable(tmp_path):
    rng = np.random.default_rng(7)
    base = write_side(tmp_path / "base", rng)
    new = write_side(tmp_path / "new", rng, elbo=-90.0, task_version="2")
    comparison = compare(base, new)
    assert {row.verdict for row in comparison.rows} == {INCOMPARABLE} and comparison.exit_code == 0
    assert all("task_version 1 → 2" in row.judgement.note for row in comparison.rows)


def test_a_device_change_pairs_the_lone_entries_and_is_drift(tmp_path):
    rng = np.random.default_rng(8)
    base = write_side(tmp_path / "base", rng)
    new = write_side(tmp_path / "new", rng, fit_s=0.01, device="gpu:H200")
    comparison = compare(base, new)
    assert {row.device for row in comparison.rows} == {"cpu:cpu → gpu:H200"}
    assert verdicts(comparison, "time_fit_s") == {DRIFT}


def test_entries_on_one_side_only_are_incomparable(tmp_path):
    rng = np.random.default_rng(9)
    base = write_side(tmp_path / "base", rng)
    write_side(tmp_path / "new", rng)
    write_side(tmp_path / "new", rng, label="advi[steps=10]")
    rows = [r for r in compare(base, tmp_path / "new").rows if r.label == "advi[steps=10]"]
    assert [(r.verdict, r.judgement.note) for r in rows] == [(INCOMPARABLE, "only in new")]


# ------------------------------------------------------------------ runs, SBC
def test_a_run_that_newly_fails_is_a_regression(tmp_path):
    rng = np.random.default_rng(10)
    base = write_side(tmp_path / "base", rng)
    new = write_side(tmp_path / "new", rng)
    append_runs(new, run_rows(5, {}, status="failed"), [])
    comparison = compare(base, new)
    assert verdicts(comparison, "run") == {REGRESSED} and comparison.exit_code == 1


def test_an_sbc_run_newly_rejected_is_a_regression(tmp_path):
    def sbc(out: Path, rejected: float) -> Path:
        metrics = {"sbc_pvalue": (0.5 if not rejected else 1e-4, math.nan), "sbc_rejected": (rejected, 0.0)}
        append_runs(out, run_rows(0, metrics, kind="sbc"), [])
        return out

    base, new = sbc(tmp_path / "base", 0.0), sbc(tmp_path / "new", 1.0)
    comparison = compare(base, new)
    assert [(r.kind, r.metric, r.verdict) for r in comparison.rows if r.metric == "sbc_rejected"] == [
        ("sbc", "sbc_rejected", REGRESSED)]
    assert verdicts(compare(new, base), "sbc_rejected") == {IMPROVED}


# ------------------------------------------------------------------ input and formats
def test_schema_1_directories_are_compared(tmp_path):
    rng = np.random.default_rng(11)
    base = tmp_path / "base"
    base.mkdir()
    old_schema = pa.schema([f for f in METRICS_SCHEMA if f.name != "kind"])
    rows = []
    for seed in range(5):
        for row in run_rows(seed, {"elbo": (-77.8 + 0.1 * rng.standard_normal(), 0.03)}):
            del row["kind"]
            rows.append({**row, "schema_version": 1})
    pq.write_table(pa.Table.from_pylist(rows, schema=old_schema), base / "runs-old.parquet")
    new = write_side(tmp_path / "new", rng, elbo=-79.0)
    comparison = compare(base, new)
    assert verdicts(comparison, "elbo") == {REGRESSED}
    assert verdicts(comparison, "khat") == {INCOMPARABLE}  # only in new


def test_a_directory_that_is_not_results_is_a_one_line_error(tmp_path, capsys):
    rng = np.random.default_rng(12)
    good = write_side(tmp_path / "good", rng)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    pq.write_table(pa.table({"x": [1, 2]}), foreign / "data.parquet")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not results")
    for bad in (foreign, empty, tmp_path / "missing"):
        assert main(["compare", str(good), str(bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("vibench: error:") and str(bad) in err[0]
    assert main(["compare", str(good), str(good), "--factor", "0.9"]) == 2
    assert "--factor must be a number > 1" in capsys.readouterr().err


def test_markdown_folds_the_unchanged_rows(tmp_path, capsys):
    rng = np.random.default_rng(13)
    base = write_side(tmp_path / "base", rng)
    new = write_side(tmp_path / "new", rng, fit_s=0.03)
    assert main(["compare", str(base), str(new), "--format", "markdown"]) == 1
    text = capsys.readouterr().out
    assert text.startswith("### ❌ vibench compare")
    changed, folded = text.split("<details>")
    assert "| regressed | linreg | advi | cpu:cpu | time_fit_s |" in changed
    assert "| unchanged |" not in changed and "| unchanged |" in folded


# ------------------------------------------------------------------ end to end through vibench run
PLUGIN = '''
"""ADVI with a fixed configuration and an optional sleep in every fit (a planted change)."""
import time
from dataclasses import dataclass

from jax.experimental import io_callback

from vibench.declarations import Method
from vibench.methods._advi import fit as advi_fit
from vibench.methods.advi import ADVIConfig

STEPS = {steps}
SLEEP_S = {sleep}


@dataclass(frozen=True)
class GateConfig:
    pass


def fit(task, logdensity, data, key, config):
    if SLEEP_S:
        io_callback(lambda: time.sleep(SLEEP_S), None, ordered=True)
    return advi_fit(task, logdensity, data, key, ADVIConfig(steps=STEPS))


gate_advi = Method(name="gate_advi", version="1", Config=GateConfig, fit=fit, doc=__doc__)
'''


def plugin(folder: Path, steps: int, sleep: float) -> Path:
    """A plug-in folder whose ``gate_advi`` is ADVI with ``steps`` and a ``sleep`` per fit:
    the same method name and label whatever the change."""
    folder.mkdir(parents=True)
    (folder / "gate_advi.py").write_text(textwrap.dedent(PLUGIN.format(steps=steps, sleep=sleep)))
    return folder


def vibench_run(out: Path, plugins: Path, seeds: int, repeat: int = 1) -> Path:
    code = main(["run", "--task", "linreg", "--method", "gate_advi", "--plugins", str(plugins),
                 "--seeds", str(seeds), "--repeat", str(repeat), "--draws", "1024", "--out", str(out)])
    assert code == 0
    return out


def test_end_to_end_a_planted_sleep_fails_and_a_rerun_passes(tmp_path, capsys):
    """Three real runs of ADVI (200 steps) with a 30 ms sleep per fit, the change sleeping
    60 ms (≈ 1.5x the fit time, sleep included): 2 seeds x 8 timings a side."""
    base = vibench_run(tmp_path / "base", plugin(tmp_path / "p_base", 200, 0.03), seeds=2, repeat=8)
    again = vibench_run(tmp_path / "again", tmp_path / "p_base", seeds=2, repeat=8)
    slow = vibench_run(tmp_path / "slow", plugin(tmp_path / "p_slow", 200, 0.06), seeds=2, repeat=8)
    assert len(read_timings(base)) == 16
    capsys.readouterr()
    assert main(["compare", str(base), str(again)]) == 0
    assert main(["compare", str(base), str(slow)]) == 1
    regressed = [l for l in capsys.readouterr().out.splitlines() if l.startswith("regressed")]
    assert len(regressed) == 1 and "gate_advi" in regressed[0] and "time_fit_s" in regressed[0]


@pytest.mark.slow
def test_end_to_end_fewer_steps_under_the_same_label_fail(tmp_path, capsys):
    """ADVI on linreg with 2000 steps against 1100 under one label, 16 seeds a side: the
    ELBO drops by about half a nat, beyond z = 4 (the under-trained side's seed spread is
    ~0.3 nats, so fewer seeds could not tell)."""
    base = vibench_run(tmp_path / "base", plugin(tmp_path / "p_base", 2000, 0.0), seeds=16)
    new = vibench_run(tmp_path / "new", plugin(tmp_path / "p_new", 1100, 0.0), seeds=16)
    capsys.readouterr()
    assert main(["compare", str(base), str(new)]) == 1
    comparison = compare(base, new)
    assert verdicts(comparison, "elbo") == {REGRESSED}
    [elbo] = [r for r in comparison.rows if r.metric == "elbo"]
    assert -1.5 < elbo.judgement.new.center - elbo.judgement.base.center < -0.3
