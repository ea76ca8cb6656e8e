"""Simulation-based calibration (Talts et al. 2018) of a method on a task.

For each replicate r, ``(θ_r, x_r) = task.simulate(key_r)`` draws parameters from the
prior and data from the model; the method is fitted on x_r; L posterior draws are
taken (a density family: L independent draws from q; MCMC draws: thinned by their
effective sample size to L nearly independent ones); each draw is mapped to the
model's constrained sites with ``logdensity.constrain``, and for every scalar
parameter (site name and flat index: ``beta[3]``, ``z[4,1]``) the rank of the true
value among the L draws, #{draws < θ_r} in 0..L (ties broken at random), is recorded.
A calibrated method gives i.i.d. uniform ranks; a method whose q is too narrow gives
U-shaped ranks, a biased one skewed ranks (draws and ranks: :mod:`vibench.sbc.ranks`;
tests: :mod:`vibench.sbc.uniformity`; plots and summary: :mod:`vibench.sbc.plots`).

Jittable methods are fitted for a chunk of replicates at once: ``jax.vmap`` of the fit
over (data, key) in one compiled call, its replicates split over every device of the
platform when there are several (GPUs; or CPU cores, with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` set before JAX starts). Other
methods (or ``vectorize=False``) are fitted one replicate at a time; everything else
is the same code. Replicate r's keys are ``fold_in(key(seed), r)``, so its result
depends neither on the chunking nor on the number of replicates.

What is recorded:

- the rank table: Parquet in ``OUT/_sbc/`` (:data:`SBC_SCHEMA`), one row per replicate
  and parameter, with the run's metadata (as the metrics table).
- rows of the metrics table, with ``kind`` ``sbc``. A row whose ``label`` is
  ``<method label>::<parameter>`` (e.g. ``advi[family=fullrank]::beta[3]``) holds that
  parameter's p-values: ``sbc_chi2_pvalue`` and ``sbc_ecdf_pvalue`` (uniformity of the
  ranks) and ``vsbc_pvalue`` (symmetry of P_q(θ < θ_true) about ½; Yao et al. 2018).
  Rows with the method's own label hold the same metrics combined over parameters
  (the smallest Holm-adjusted p-value, a valid family-wise p-value), and the verdict:
  ``sbc_pvalue``, Holm over both uniformity tests and every parameter, and
  ``sbc_rejected`` (1 when ``sbc_pvalue`` ≤ α); costs ``time_compile_s`` and
  ``sbc_time_fit_s`` (all replicates), and ``sbc_replicates``, ``sbc_draws``.
  Every p-value is exact (:mod:`vibench.sbc.uniformity`): its ``stderr`` is 0.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from vibench.core import LogDensity, Task
from vibench.harness.runner import (
    compile_fit,
    failed_outcome,
    logdensity_of,
    run_base,
    run_meta,
    sync_time,
)
from vibench.registry import MethodChoice
from vibench.sbc import DEFAULT_DRAWS, DEFAULT_REPLICATES, uniformity
from vibench.sbc.ranks import break_ties, param_names, posterior_draws, rank_counts
from vibench.sbc.records import (
    ALPHA,
    PARAM_SEPARATOR,
    TEST_COLUMNS,
    TEST_METRICS,
    SBCOutcome,
    uniformity_tests,
)


@partial(jax.jit, static_argnums=1)
def replicate_keys(seed: int, replicates: int) -> jax.Array:
    """(R, 3) keys: replicate r's simulation, fit and draw keys, from fold_in(key(seed), r)."""
    base = jax.random.key(seed)
    return jax.vmap(lambda r: jax.random.split(jax.random.fold_in(base, r), 3))(
        jnp.arange(replicates)
    )

CHUNK_BYTES = 2**28  # most bytes of fitted approximations and draws held at once



@lru_cache(maxsize=32)
def _simulator(task: Task):
    return jax.jit(jax.vmap(task.simulate))


@lru_cache(maxsize=32)
def _rank_counter(logdensity: LogDensity):
    return jax.jit(jax.vmap(partial(rank_counts, logdensity)))


def _index(tree, i):
    return jax.tree.map(lambda leaf: leaf[i], tree)


def _check_truth(task: Task, logdensity: LogDensity, keys) -> tuple[str, ...]:
    """The scalar parameter names; checks that ``simulate`` gives every latent site."""
    truth, data = jax.eval_shape(task.simulate, keys[0, 0])
    z = jax.eval_shape(logdensity.init, keys[0, 0])
    constrained = jax.eval_shape(logdensity.constrain, z, data)
    shapes = {site: tuple(constrained[site].shape) for site in logdensity.site_shapes}
    for site, shape in shapes.items():
        if site not in truth or tuple(truth[site].shape) != shape:
            raise ValueError(
                f"task {task.label}: simulate() must return the true value of latent site "
                f"{site!r} with shape {shape}"
            )
    return param_names(shapes)


def replicate_sharding(device: jax.Device) -> NamedSharding | None:
    """Replicates split evenly over every device of ``device``'s platform (several GPUs,
    or CPU cores exposed as devices with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``);
    ``None`` when there is only one."""
    devices = jax.devices(device.platform)
    if len(devices) < 2:
        return None
    return NamedSharding(Mesh(np.asarray(devices), ("replicate",)), PartitionSpec("replicate"))


def _padded(keys, size: int):
    """``size`` rows of ``keys``, the last one repeated past the end (padding a chunk)."""
    return keys[np.minimum(np.arange(size), keys.shape[0] - 1)]


def _vmapped_fit(
    task: Task,
    choice: MethodChoice,
    keys,
    n_draws: int,
    chunk_size: int | None,
    sharding: NamedSharding | None,
):
    """``(compiled fit(data, keys) over a chunk, compile seconds, chunk size)``.

    Without ``chunk_size``, a chunk holds every replicate unless its outputs (fits and
    draws) would pass :data:`CHUNK_BYTES`; chunks are then equal, the last one padded.
    With a ``sharding``, a chunk is a multiple of its number of devices (padded).
    """
    logdensity = logdensity_of(task)
    placement = {} if sharding is None else {"in_shardings": sharding}
    batched = jax.jit(
        jax.vmap(lambda d, k: choice.method.fit(task, logdensity, d, k, choice.config)), **placement
    )
    devices = 1 if sharding is None else sharding.mesh.size
    start = time.perf_counter()

    def trace(size: int):
        size = math.ceil(size / devices) * devices
        chunk = _padded(keys, size)
        _, data = jax.eval_shape(_simulator(task), chunk[:, 0])
        return batched.trace(data, chunk[:, 1]), size

    traced, size = trace(chunk_size or keys.shape[0])
    if chunk_size is None:
        fitted = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(traced.out_info))
        per_replicate = fitted / size + 2 * n_draws * logdensity.dim * 8
        chunks = math.ceil(size * per_replicate / CHUNK_BYTES)
        if chunks > 1:
            traced, size = trace(math.ceil(keys.shape[0] / chunks))
    compiled = traced.lower().compile()
    return compiled, time.perf_counter() - start, size


def _looped_fit(task: Task, choice: MethodChoice, keys):
    """``(fit(data, keys) one replicate at a time, compile seconds or None)``."""
    _, data = jax.eval_shape(task.simulate, keys[0, 0])
    single, compile_s = compile_fit(task, choice, data, keys[0, 1])

    def loop(data, keys):
        fits = [single(_index(data, r), keys[r]) for r in range(keys.shape[0])]
        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *fits)

    return loop, compile_s


def simulate_and_rank(
    task: Task,
    choice: MethodChoice,
    replicates: int,
    n_draws: int,
    seed: int,
    device: jax.Device,
    vectorize: bool = True,
    chunk_size: int | None = None,
):
    """``(params, ranks (R, P), all finite, costs)`` of an SBC run; see the module doc.

    A vmapped run shards each chunk's replicates over the devices of ``device``'s
    platform (:func:`replicate_sharding`); a looped run fits on ``device`` and takes
    ``chunk_size`` (default 1) replicates per round of draws and ranks.
    """
    logdensity = logdensity_of(task)
    keys = replicate_keys(seed, replicates)
    params = _check_truth(task, logdensity, keys)
    vmapped = vectorize and choice.method.jittable
    sharding = replicate_sharding(device) if vmapped else None
    # the transfer of a chunk's inputs to its devices is part of the fit's time
    place = (lambda inputs: inputs) if sharding is None else partial(jax.device_put, device=sharding)
    if vmapped:
        fit, compile_s, size = _vmapped_fit(task, choice, keys, n_draws, chunk_size, sharding)
    else:
        (fit, compile_s), size = _looped_fit(task, choice, keys), chunk_size or 1
    rng = np.random.default_rng(seed)
    fit_s, counts = 0.0, []
    for start in range(0, replicates, size):
        stop = start + size if vmapped else min(start + size, replicates)
        index = np.minimum(np.arange(start, stop), replicates - 1)  # pads a compiled chunk
        truth, data = _simulator(task)(keys[index, 0])
        approx, seconds = sync_time(lambda: fit(*place((data, keys[index, 1]))))
        fit_s += seconds
        draws = posterior_draws(approx, keys[index, 2], n_draws, rng)
        keep = min(size, replicates - start)
        counts.append([np.asarray(c)[:keep] for c in _rank_counter(logdensity)(draws, data, truth)])
    less, equal, finite = (np.concatenate(c) for c in zip(*counts))
    costs = {"sbc_time_fit_s": fit_s, "sbc_replicates": replicates, "sbc_draws": n_draws}
    if compile_s is not None:
        costs["time_compile_s"] = compile_s
    return params, break_ties(less, equal, rng), bool(finite.all()), costs


# ---------------------------------------------------------------- tests and results



def run_sbc(
    task: Task,
    choice: MethodChoice,
    replicates: int = DEFAULT_REPLICATES,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    device: jax.Device | None = None,
    *,
    vectorize: bool = True,
    chunk_size: int | None = None,
    alpha: float = ALPHA,
) -> SBCOutcome:
    """Run SBC of ``choice`` on ``task``: ``replicates`` data sets, ``draws`` posterior
    draws each (ranks 0..draws), replicate keys from ``seed``, on ``device``.

    ``vectorize=False`` fits one replicate at a time even for a jittable method (the
    slow path, kept for comparison); ``chunk_size`` overrides the replicates per call.
    A run that raises or gives non-finite draws becomes a ``failed`` / ``nan`` outcome
    with no ranks. Raises ``ValueError`` only for settings that cannot be tested (fewer
    than 10 replicates, no draws).
    """
    if draws < 1:
        raise ValueError("SBC needs at least one posterior draw per replicate")
    uniformity.chi2_bins(replicates, draws)
    device = device or jax.devices()[0]
    base = {**run_base(task, choice, device), "kind": "sbc"}
    no_ranks = dict(params=(), ranks=np.zeros((0, 0), np.int64), n_draws=draws, alpha=alpha,
                    tests=pd.DataFrame(columns=TEST_COLUMNS))
    try:
        with jax.default_device(device):
            params, ranks, finite, costs = simulate_and_rank(
                task, choice, replicates, draws, seed, device, vectorize, chunk_size
            )
    except Exception as err:  # noqa: BLE001 - a failed run is a result
        rows = failed_outcome(base, seed, err).rows
        run = {k: v for k, v in rows[0].items() if k not in ("metric", "value", "stderr")}
        return SBCOutcome(run=run, rows=rows, **no_ranks)
    if not finite:
        run = run_meta(base, seed, "nan", "non-finite posterior draws or true values")
        return SBCOutcome(run=run, rows=_rows(run, costs), **no_ranks)
    run = run_meta(base, seed, "ok", None)
    tests = uniformity_tests(ranks, draws, params, alpha)
    pvalue = float(tests["holm_pvalue"].min())
    summary = {m: float(uniformity.holm(tests[m].to_numpy()).min()) for m in TEST_METRICS}
    summary.update(sbc_pvalue=pvalue, sbc_rejected=float(pvalue <= alpha), **costs)
    rows = _rows(run, summary)
    for record in tests.to_dict("records"):
        param_run = {**run, "label": f"{choice.label}{PARAM_SEPARATOR}{record['param']}"}
        rows += _rows(param_run, {m: record[m] for m in TEST_METRICS})
    return SBCOutcome(run, rows, params, ranks, draws, tests, alpha)


def _rows(run: dict, values: dict) -> list[dict]:
    """Metric rows of ``run``; every value here is exact or a count, so stderr is 0."""
    return [{**run, "metric": k, "value": float(v), "stderr": 0.0} for k, v in values.items()]
