"""Resume and the compile cache, each through ``vibench run`` in fresh processes: a grid
killed with SIGKILL midway and rerun with ``--resume`` ends with every run stored ok
exactly once, and a second run in a fresh process is served by the persistent
compilation cache and gives the same numbers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from vibench.harness.store import SkippedFileWarning, parquet_files, read_metrics

METHODS = ("cavi", "exact", "advi[steps=50]")
SEEDS = 5
KILL_AFTER_FILES = 6
"""Run files written when the first process is killed: past the first pair, before the last."""


def vibench(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "vibench", "run", "--task", "linreg", *args]


def environment(cache: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(cache), "JAX_PLATFORMS": "cpu"}


def grid(out: Path) -> list[str]:
    return [arg for m in METHODS for arg in ("--method", m)] + ["--seeds", str(SEEDS), "--draws", "256", "--out", str(out)]


def ok_runs(out: Path) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedFileWarning)  # no corrupt file
        table = read_metrics(out)
    ok = table[table["status"] == "ok"]
    return ok.drop_duplicates("run_id")[["config_hash", "label", "seed"]]


def test_sigkill_midway_then_resume_runs_each_run_once(tmp_path):
    out, cache = tmp_path / "res", tmp_path / "cache"
    first = subprocess.Popen(vibench(grid(out)), env=environment(cache),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(parquet_files(out)) < KILL_AFTER_FILES and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first.poll() is None, "the grid ended before it could be killed midway"
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = ok_runs(out)
    assert KILL_AFTER_FILES <= len(before) < len(METHODS) * SEEDS

    second = subprocess.run(vibench([*grid(out), "--resume"]), env=environment(cache),
                            capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    assert f"--resume: {len(before)} run(s) already stored ok" in second.stderr
    after = ok_runs(out)
    assert len(after) == len(METHODS) * SEEDS
    assert not after.duplicated(["config_hash", "seed"]).any()
    assert set(after["seed"]) == set(range(SEEDS)) and after["label"].nunique() == len(METHODS)

    third = subprocess.run(vibench([*grid(out), "--resume"]), env=environment(cache),
                           capture_output=True, text=True, check=False)
    assert third.returncode == 0 and "nothing left to run" in third.stderr
    assert len(ok_runs(out)) == len(METHODS) * SEEDS


def test_a_second_run_is_served_by_the_compile_cache_with_the_same_numbers(tmp_path):
    cache = tmp_path / "cache"
    tables = []
    for name in ("first", "second"):
        out = tmp_path / name
        done = subprocess.run(vibench(["--method", "advi[steps=50]", "--method", "cavi", "--draws", "256",
                                       "--out", str(out)]), env=environment(cache),
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        tables.append(read_metrics(out).set_index(["label", "seed", "metric"])["value"])
    assert any((cache / "vibench" / "jax").iterdir())
    first, second = tables
    hits = [t.xs("compile_cache_hit", level="metric") for t in tables]
    assert (hits[0] == 0).all() and (hits[1] == 1).all()
    timed = first.index.get_level_values("metric").str.startswith("time_")
    same = first[~timed].drop(index="compile_cache_hit", level="metric")
    pd.testing.assert_series_equal(same, second.loc[same.index], check_exact=True)
