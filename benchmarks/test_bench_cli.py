"""Start-up of the command line: a bad request is answered before JAX is imported.

Each benchmark runs a fresh interpreter; the baseline in the same run is ``python -c
"import jax"``, so the printed ratio says how much of JAX's import the CLI avoids::

    python -m pytest benchmarks/test_bench_cli.py --benchmark-enable -n 0 -s
"""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = {
    "vibench run --task nosuch": ["-c", "from vibench.cli import main; main(['run', '--task', 'nosuch'])"],
    "vibench list": ["-c", "from vibench.cli import main; main(['list'])"],
    "import jax (baseline)": ["-c", "import jax"],
}
TIMES: dict[str, float] = {}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_startup(benchmark, name):
    argv = [sys.executable, *COMMANDS[name]]
    benchmark.pedantic(lambda: subprocess.run(argv, capture_output=True, check=False), rounds=5, iterations=1)
    if benchmark.enabled:
        TIMES[name] = benchmark.stats["median"]
        if len(TIMES) == len(COMMANDS):
            base = TIMES["import jax (baseline)"]
            for label, seconds in TIMES.items():
                print(f"\n{label}: {seconds:.3f} s median, {seconds / base:.2f} x import jax")
