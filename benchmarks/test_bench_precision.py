"""NUTS on Neal's funnel in float32 and float64, side by side (issue 16): divergent
transitions after warm-up and the worst coordinate's R-hat, per seed, from one results
directory written by ``vibench run --precision P`` (each precision in its own process:
JAX's x64 mode is process-global).

    pytest benchmarks/test_bench_precision.py -n 0 -p no:cacheprovider -s

prints the table. The funnel's neck is where NUTS diverges; whether float64 removes
divergences (a rounding failure) or not (the step size and geometry: an algorithmic
one) is what the table shows. Nothing about the counts is asserted — they are the
measurement — only that both precisions ran, were recorded apart and kept both
diagnostics.
"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from vibench.harness.store import read_metrics

TASK, METHOD, SEEDS = "funnel", "nuts", 2
DIAGNOSTICS = ("divergences", "rhat_max", "ess_bulk_min")


def side_by_side(table: pd.DataFrame) -> pd.DataFrame:
    """Seeds in rows, (diagnostic, precision) in columns."""
    rows = table[table["metric"].isin(DIAGNOSTICS)]
    return rows.pivot_table(index="seed", columns=["metric", "precision"], values="value")


def test_nuts_funnel_divergences_and_rhat_in_both_precisions(tmp_path):
    for precision in ("float32", "float64"):
        done = subprocess.run(
            [sys.executable, "-m", "vibench.cli", "run", "--task", TASK, "--method", METHOD,
             "--seeds", str(SEEDS), "--draws", "256", "--precision", precision, "--out", str(tmp_path)],
            capture_output=True, text=True, timeout=900,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    table = read_metrics(tmp_path)
    assert set(table["status"]) == {"ok"}
    wide = side_by_side(table)
    print(f"\n{METHOD} on {TASK}, per seed:\n{wide.to_string(float_format=lambda v: f'{v:.4g}')}")
    assert wide.shape == (SEEDS, len(DIAGNOSTICS) * 2) and not wide.isna().any().any()
