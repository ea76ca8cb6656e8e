"""Process isolation (``vibench run --timeout``): a plug-in that never returns, in Python
or in compiled code, becomes a ``timeout`` row, one that kills its process a ``failed``
row, and the rest of the grid completes with the numbers of an in-process run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from vibench.harness.store import parquet_files, read_metrics

PLUGIN = '''
"""Methods that never return (in Python and in a compiled loop) and one that crashes its process."""
import os
import signal
from dataclasses import dataclass

from vibench.declarations import Method


@dataclass(frozen=True)
class NoConfig:
    pass


def python_forever(task, logdensity, data, key, config):
    while True:
        pass


def compiled_forever(task, logdensity, data, key, config):
    import jax.numpy as jnp
    from jax import lax

    from vibench.core import Approximation
    from vibench.families.gaussian import MeanField

    loc = lax.while_loop(lambda x: jnp.all(jnp.isfinite(x)), lambda x: x * 0.5, jnp.zeros(logdensity.dim))
    params = {"loc": loc, "log_scale": jnp.zeros(logdensity.dim)}
    return Approximation(params=params, trace=jnp.zeros(1), grad_evals=jnp.asarray(0), family=MeanField())


def crash(task, logdensity, data, key, config):
    os.kill(os.getpid(), signal.SIGSEGV)


pyloop = Method(name="pyloop", version="0", Config=NoConfig, fit=python_forever, jittable=False, doc=__doc__)
xlaloop = Method(name="xlaloop", version="0", Config=NoConfig, fit=compiled_forever, doc=__doc__)
crasher = Method(name="crasher", version="0", Config=NoConfig, fit=crash, jittable=False, doc=__doc__)
'''


def run(tmp_path: Path, out: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}
    argv = [sys.executable, "-m", "vibench", "run", "--task", "linreg", "--draws", "256",
            "--plugins", str(tmp_path / "plugins"), "--out", str(tmp_path / out), *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)


def runs(out: Path) -> pd.DataFrame:
    return read_metrics(out).drop_duplicates("run_id").set_index("label")


def test_timeouts_and_crashes_are_rows_and_the_grid_goes_on(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "forever.py").write_text(PLUGIN)
    methods = ["pyloop", "xlaloop", "crasher", "cavi"]
    isolated = run(tmp_path, "isolated", "--timeout", "5", *[a for m in methods for a in ("--method", m)])
    assert isolated.returncode == 1, isolated.stderr
    assert "3 run(s) did not finish ok" in isolated.stderr
    table = runs(tmp_path / "isolated")
    assert dict(table["status"]) == {"pyloop": "timeout", "xlaloop": "timeout", "crasher": "failed", "cavi": "ok"}
    assert "the run did not finish within 5 s (--timeout)" in table.loc["pyloop", "error"]
    assert "the run did not finish within 5 s (--timeout)" in table.loc["xlaloop", "error"]
    assert "the worker process died (SIGSEGV)" in table.loc["crasher", "error"]

    here = run(tmp_path, "here", "--method", "cavi")
    assert here.returncode == 0, here.stderr
    values = [read_metrics(tmp_path / d).query("label == 'cavi' and not metric.str.startswith('time_')")
              .set_index("metric")["value"].drop("compile_cache_hit") for d in ("isolated", "here")]
    pd.testing.assert_series_equal(*values, check_exact=True)


def test_ctrl_c_twice_during_a_compiled_loop_stops_within_seconds(tmp_path):
    """The first Ctrl-C waits for the run in progress (a compiled loop: forever), the
    second kills the worker; what finished before is written, the exit code is 130."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "forever.py").write_text(PLUGIN)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}
    out = tmp_path / "res"
    argv = [sys.executable, "-m", "vibench", "run", "--task", "linreg", "--draws", "256", "--method", "cavi",
            "--method", "xlaloop", "--plugins", str(tmp_path / "plugins"), "--out", str(out), "--timeout", "600"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not parquet_files(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2)  # into xlaloop's compiled loop
    process.send_signal(signal.SIGINT)
    time.sleep(1)
    assert process.poll() is None  # the first Ctrl-C waits for the run in progress
    pressed = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert time.monotonic() - pressed < 5
    assert process.returncode == 130, err
    assert "stopping after the run in progress" in err and "interrupted" in err
    assert dict(runs(out)["status"]) == {"cavi": "ok"}
