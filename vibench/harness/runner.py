"""The harness: fit a method on a task for several seeds, time it, measure it, record it.

Timing: the fit is compiled ahead of time (``jit(...).lower(...).compile()``) and
that is timed as ``time_compile_s``, once per task × method (``compile_cache_hit`` is 1
when JAX's persistent cache served it, :mod:`vibench.harness.cache`); each seed's run is then
timed as ``time_fit_s``, with the device synchronized (``block_until_ready``) before
every clock read. With ``repeat`` R > 1 each seed's compiled fit is timed R times (the
same data and key); ``time_fit_s`` stays the first timing and all R go to the outcome's
``timings`` (:mod:`vibench.harness.timings`), the samples a speed comparison ranks. A run that raises becomes a ``failed`` row and one whose approximation has
non-finite parameters a ``nan`` row; the grid goes on.

Draws kept for plots: on a task of at most :data:`vibench.store.DRAWS_STORED_MAX_DIM`
dimensions, an ``ok`` run keeps :data:`vibench.store.DRAWS_STORED` draws of its
approximation, with the key ``fold_in(key(seed), KEPT_DRAWS_STREAM)`` (apart from the
fit and metric keys split from ``key(seed)``): a density family's draws from q; a draws
family's own draws, subsampled without replacement when it has more. A task's
reference gives as many with ``key(0)`` (:func:`reference_draws`).
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vibench.core import Approximation, LogDensity, Task
from vibench.declarations import config_items
from vibench.harness import DRAWS_STORED, DRAWS_STORED_MAX_DIM, environment
from vibench.harness.cache import cache_events
from vibench.harness.precision import DEFAULT_PRECISION, current_precision
from vibench.harness.store import SCHEMA_VERSION
from vibench.harness.timings import timing_rows
from vibench.logdensity import derive_logdensity
from vibench.metrics.estimates import Estimate
from vibench.metrics.evaluation import METRIC_DRAWS, evaluate
from vibench.registry import MethodChoice

KEPT_DRAWS_STREAM = 1


@dataclass(frozen=True)
class RunOutcome:
    """One (task, method, seed) run: its metric rows, its objective trace, the fitted
    approximation unless it failed (for in-process use; it is not stored), the
    draws kept for plots (rows of :data:`vibench.store.DRAWS_SCHEMA`; see the module doc)
    and the repeated fit timings (rows of :data:`vibench.harness.timings.TIMINGS_SCHEMA`)."""

    rows: list[dict]
    traces: list[dict]
    approximation: Approximation | None = None
    draws: list[dict] = field(default_factory=list)
    timings: list[dict] = field(default_factory=list)


logdensity_of: Callable[[Task], LogDensity] = lru_cache(maxsize=32)(derive_logdensity)


def config_json(config: Any) -> str:
    return json.dumps(config_items(config), sort_keys=True)


def config_hash(task: Task, choice: MethodChoice, precision: str = DEFAULT_PRECISION) -> str:
    """Identifies a run's full configuration (task and method, with versions, and the
    precision, which enters only where it is not the default: float32 hashes are those
    of the stores written before precision was a parameter)."""
    parts = [task.label, task.version, choice.label, choice.method.version, config_json(choice.config)]
    text = json.dumps(parts if precision == DEFAULT_PRECISION else [*parts, precision])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finite(approx: Approximation) -> bool:
    params = approx.params
    draws = approx.family.valid_draws(params)
    if draws is not None:
        params = {**params, "draws": draws}
    # The trace may hold −inf legitimately (Pathfinder scores candidate points along its
    # path, some hopeless); what must be finite is the approximation itself.
    leaves = jax.tree_util.tree_leaves(params)
    return all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)


def sync_time(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), seconds)`` with the device synchronized before the clock is read."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def compile_fit(task: Task, choice: MethodChoice, data, key):
    """``(fit(data, key), compile seconds)``; jittable methods are compiled ahead of time."""
    logdensity = logdensity_of(task)

    def fit(data, key):
        return choice.method.fit(task, logdensity, data, key, choice.config)

    if not choice.method.jittable:
        return fit, None
    start = time.perf_counter()
    compiled = jax.jit(fit).lower(data, key).compile()
    return compiled, time.perf_counter() - start


def run_base(task: Task, choice: MethodChoice, device: jax.Device) -> dict:
    """The metadata every row of a run carries: what ran, where, and with which code
    (``kind``: ``run``, a benchmark run; SBC sets ``sbc``; ``precision``: what JAX computes in)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "run",
        "task": task.name,
        "task_label": task.label,
        "task_version": task.version,
        "method": choice.method.name,
        "method_version": choice.method.version,
        "label": choice.label,
        "config": config_json(choice.config),
        "config_hash": config_hash(task, choice, current_precision()),
        "precision": current_precision(),
        "device": environment.describe_device(device),
        "git_commit": environment.git_commit(),
        "host": environment.host(),
        "versions": environment.versions_json(),
    }


def run_pair(
    task: Task,
    choice: MethodChoice,
    seeds: list[int],
    device: jax.Device,
    n_draws: int = METRIC_DRAWS,
    repeat: int = 1,
) -> list[RunOutcome]:
    """Run ``choice`` on ``task`` once per seed on ``device`` (each fit timed ``repeat``
    times); never raises for a bad run."""
    return list(iter_pair(task, choice, seeds, device, n_draws, repeat))


def iter_pair(
    task: Task,
    choice: MethodChoice,
    seeds: list[int],
    device: jax.Device,
    n_draws: int = METRIC_DRAWS,
    repeat: int = 1,
    started: Callable[[str, int | None], None] | None = None,
) -> Iterator[RunOutcome]:
    """:func:`run_pair` one seed at a time: each outcome is yielded as soon as its run
    ends (so it can be written before the next begins). ``started(phase, seed)`` is
    called before the compile (``"compile"``, ``None``) and before each seed's run
    (``"run"``, seed): where a supervisor restarts its clock (:mod:`vibench.harness.executor`)."""
    base = run_base(task, choice, device)
    with jax.default_device(device):
        data = jax.device_put(task.data, device)
        if started is not None:
            started("compile", None)
        try:
            with cache_events() as events:
                fit, compile_s = compile_fit(task, choice, data, jax.random.key(seeds[0]))
        except Exception as err:  # noqa: BLE001 - a failed run is a result
            yield from (failed_outcome(base, seed, err) for seed in seeds)
            return
        compiled = None if compile_s is None else (compile_s, events.served)
        for seed in seeds:
            if started is not None:
                started("run", seed)
            yield _run_seed(base, task, choice, fit, compiled, data, seed, n_draws, repeat)


def _run_seed(base, task, choice, fit, compiled, data, seed, n_draws, repeat) -> RunOutcome:
    key_fit, key_metrics = jax.random.split(jax.random.key(seed))
    try:
        approx, fit_s = sync_time(lambda: fit(data, key_fit))
        seconds = [fit_s] + [sync_time(lambda: fit(data, key_fit))[1] for _ in range(repeat - 1)]
        costs = {
            "time_fit_s": Estimate(fit_s),
            "grad_evals": Estimate(float(approx.grad_evals)),
            "steps": Estimate(float(approx.n_steps)),
        }
        if compiled is not None:
            costs["time_compile_s"] = Estimate(compiled[0])
            costs["compile_cache_hit"] = Estimate(float(compiled[1]))
        costs.update({name: Estimate(float(v)) for name, v in approx.diagnostics.items()})
        kept = None
        if not _finite(approx):
            status, error = "nan", "non-finite parameters"
            estimates = costs
        elif (draws := approx.family.valid_draws(approx.params)) is not None and draws.size == 0:
            status, error = "failed", "no draws: the budget ran out before sampling began"
            estimates = costs
        else:
            status, error = "ok", None
            estimates = {**evaluate(task, logdensity_of(task), approx, key_metrics, n_draws), **costs}
            if logdensity_of(task).dim <= DRAWS_STORED_MAX_DIM:
                kept = kept_draws(approx, jax.random.fold_in(jax.random.key(seed), KEPT_DRAWS_STREAM))
    except Exception as err:  # noqa: BLE001 - a failed run is a result
        return failed_outcome(base, seed, err)
    run = {**run_meta(base, seed, status, error), "stop_reason": approx.stop_reason}
    rows = [{**run, "metric": k, "value": e.value, "stderr": e.stderr} for k, e in estimates.items()]
    ids = {"run_id": run["run_id"], "task_label": task.label, "label": choice.label, "seed": seed}
    trace = np.asarray(approx.ran_trace(), np.float64)
    traces = [
        {**ids, "objective": approx.objective, "step": step, "value": value}
        for step, value in enumerate(trace.tolist())
    ]
    draws = [] if kept is None else [{**ids, **row} for row in _long(kept)]
    return RunOutcome(rows, traces, approx, draws, timing_rows(ids, seconds))


def kept_draws(approx: Approximation, key) -> np.ndarray:
    """``(n, dim)`` draws of ``approx`` kept for plots, n ≤ :data:`DRAWS_STORED`; see the module doc."""
    if approx.has_density:
        return np.asarray(approx.sample(key, DRAWS_STORED), np.float64)
    values = np.asarray(approx.family.valid_draws(approx.params), np.float64)
    values = values.reshape(-1, values.shape[-1])
    if len(values) > DRAWS_STORED:
        values = values[np.asarray(jax.random.choice(key, len(values), (DRAWS_STORED,), replace=False))]
    return values


def reference_draws(task: Task) -> list[dict]:
    """Rows of :data:`vibench.store.REFERENCE_DRAWS_SCHEMA`: :data:`DRAWS_STORED` draws
    from the task's reference with ``key(0)``, for a task of at most
    :data:`DRAWS_STORED_MAX_DIM` dimensions with a reference sampler (else none)."""
    if task.reference.sample is None or logdensity_of(task).dim > DRAWS_STORED_MAX_DIM:
        return []
    values = np.asarray(task.reference.sample(jax.random.key(0), DRAWS_STORED), np.float64)
    ids = {"task_label": task.label, "task_version": task.version}
    return [{**ids, **row} for row in _long(values)]


def _long(values: np.ndarray) -> list[dict]:
    """``(n, dim)`` draws as rows ``{draw, coordinate, value}``."""
    return [
        {"draw": i, "coordinate": j, "value": v}
        for i, point in enumerate(values.tolist())
        for j, v in enumerate(point)
    ]


def run_meta(base: dict, seed: int, status: str, error: str | None) -> dict:
    return {
        **base,
        "run_id": uuid.uuid4().hex,
        "seed": seed,
        "status": status,
        "error": error,
        "stop_reason": None,
        "timestamp": datetime.now(timezone.utc),
    }


def failed_outcome(base: dict, seed: int, err: Exception) -> RunOutcome:
    text = "".join(traceback.format_exception_only(type(err), err)).strip()
    return unfinished_outcome(base, seed, "failed", text)


def unfinished_outcome(base: dict, seed: int, status: str, error: str) -> RunOutcome:
    """A run that gave no metrics: one ``run`` row (value NaN) with ``status``
    (``failed``, or ``timeout`` for one stopped at its time limit) and ``error``."""
    row = {**run_meta(base, seed, status, error), "metric": "run", "value": float("nan"), "stderr": float("nan")}
    return RunOutcome([row], [])
