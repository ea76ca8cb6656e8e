"""SBC's vmapped path split over several devices gives the ranks of the one-device path.

Several CPU devices exist only when ``XLA_FLAGS`` says so before JAX starts, so the
sharded run is a subprocess; both runs use the same replicate keys, so their ranks
must agree (vmapping and sharding may reassociate float sums: rare flips allowed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from vibench.sbc.run import run_sbc

TASK, METHOD, REPLICATES = "linreg", "advi[family=fullrank,steps=300]", 25  # odd: padded
SHARDED_RUN = f"""
import sys, jax, numpy as np
from vibench.registry import discover
from vibench.sbc.run import replicate_sharding, run_sbc
assert replicate_sharding(jax.devices()[0]).mesh.size == 2
registry = discover()
outcome = run_sbc(registry.task("{TASK}"), registry.method("{METHOD}"), {REPLICATES})
assert outcome.run["status"] == "ok", outcome.run["error"]
np.save(sys.argv[1], outcome.ranks)
"""


def test_sharded_replicates_give_the_same_ranks(registry, tmp_path: Path):
    path = tmp_path / "ranks.npy"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    subprocess.run([sys.executable, "-c", SHARDED_RUN, str(path)], env=env, check=True, timeout=300)
    single = run_sbc(registry.task(TASK), registry.method(METHOD), REPLICATES)
    assert single.run["status"] == "ok"
    assert (np.load(path) == single.ranks).mean() > 0.99
