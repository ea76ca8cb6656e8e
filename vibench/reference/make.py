"""A task's reference from a long multi-chain NUTS run, judged by posteriordb's bar.

The chains are :func:`vibench.methods._mcmc.run_chains` (NumPyro's NUTS kernel,
vectorized chains, window adaptation of the step size and mass matrix during
warm-up) on the task's flat unconstrained log density, compiled once. They run in
float64: JAX's x64 mode is switched on by a context manager for this run only
(``jax.enable_x64``), so the rest of the process keeps its precision. The task's own
constant arrays keep the precision they were built with (float32 by default): the
chains then sample that model, evaluated in float64. The provenance records both:
``precision``, the chains', and ``task_precision``, the task build's (``vibench
reference --precision``).

The defaults (4 chains × 2500 draws after 1000 warm-up iterations, a dense mass
matrix) give posteriordb's 10 000 draws; the run is judged by
:class:`vibench.reference.summary.Criteria`, and :func:`vibench.reference.artifact.write_reference`
stores it only if it passes.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime

import jax
import jax.numpy as jnp
import numpy as np

from vibench.core import Task
from vibench.harness.environment import git_commit, versions_json
from vibench.harness.precision import current_precision
from vibench.logdensity import derive_logdensity
from vibench.methods._mcmc import run_chains
from vibench.methods.mcmc import NUTSConfig
from vibench.reference.summary import POSTERIORDB, Criteria, ReferenceRun, summarize


def make_reference(
    task: Task,
    *,
    chains: int = 4,
    draws: int = 2500,
    warmup: int = 1000,
    seed: int = 0,
    dense_mass: bool = True,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    criteria: Criteria = POSTERIORDB,
) -> ReferenceRun:
    """Run ``chains`` NUTS chains of ``warmup`` + ``draws`` iterations on ``task`` from
    ``seed`` and summarize the draws after warm-up (moments with MCSEs, R-hat, ESS).

    The run is returned whether or not it meets ``criteria``; writing it checks them.
    """
    for name, value, least in (("chains", chains, 1), ("draws", draws, 4), ("warmup", warmup, 0)):
        if value < least:
            raise ValueError(f"{name} must be at least {least}; got {value}")
    if not 0 < target_accept < 1:
        raise ValueError(f"target_accept must lie in (0, 1); got {target_accept}")
    config = NUTSConfig(
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        target_accept=target_accept,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
    )
    task_precision = current_precision()  # what the task was built in: this process's precision
    with jax.enable_x64(True):
        logdensity = derive_logdensity(task)
        start = logdensity.init
        logdensity = replace(logdensity, init=lambda key: start(key).astype(jnp.float64))

        def sample(key: jax.Array):
            return run_chains(logdensity, task.data, key, config, "NUTS", {"max_tree_depth": max_tree_depth})

        key = jax.random.key(seed)
        clock = time.perf_counter()
        compiled = jax.jit(sample).lower(key).compile()
        compile_s = time.perf_counter() - clock
        clock = time.perf_counter()
        approx = jax.block_until_ready(compiled(key))
        sample_s = time.perf_counter() - clock
        values = np.asarray(approx.params["draws"])
        divergences = int(approx.diagnostics["divergences"])
        accept_prob = float(approx.diagnostics["accept_prob"])
        grad_evals = int(approx.grad_evals)
    provenance = {
        "sampler": "NUTS: NumPyro's kernel driven by vibench.methods._mcmc.run_chains, vectorized chains",
        "chains": chains,
        "warmup": warmup,
        "draws_per_chain": draws,
        "seed": seed,
        "dense_mass": dense_mass,
        "target_accept": target_accept,
        "max_tree_depth": max_tree_depth,
        "precision": str(values.dtype),
        "task_precision": task_precision,
        "accept_prob": accept_prob,
        "divergences": divergences,
        "grad_evals": grad_evals,
        "compile_s": compile_s,
        "sample_s": sample_s,
        "task": {"label": task.label, "version": task.version},
        "versions": json.loads(versions_json()),
        "vibench_commit": git_commit(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return ReferenceRun(
        label=task.label,
        version=task.version,
        draws=values,
        divergences=divergences,
        summary=summarize(values),
        provenance=provenance,
        criteria=criteria,
    )
