"""SBC fit time per replicate: one vmapped compiled call over every replicate against a
loop of separately dispatched fits (the same compiled single fit, called R times), for
ADVI (compute-bound: 2000 optimizer steps) and the exact posterior (dispatch-bound).

Run (the ratio is printed and kept in the benchmark's ``extra_info``; speed is
measured, never asserted — the issue's target is 10x on CPU)::

    pytest benchmarks/test_bench_sbc.py --benchmark-enable -n 0 -p no:cacheprovider -s

and, to split the vmapped replicates over the CPU's cores (one XLA device per core; the
loop runs on one device either way)::

    XLA_FLAGS=--xla_force_host_platform_device_count=2 pytest benchmarks/test_bench_sbc.py ...

Both paths run the same SBC (same keys, same ranks) on the same process; the fit
time is the harness's synchronized ``sbc_time_fit_s`` (compile excluded: it is paid
once per run, not per replicate), the minimum over :data:`ROUNDS` runs, divided by
the number of replicates. pytest-benchmark times the whole vmapped SBC run
(compile, simulation, draws, ranks and tests included).
"""

from __future__ import annotations

import pytest

from vibench.registry import Registry, discover
from vibench.sbc import DEFAULT_REPLICATES
from vibench.sbc.records import SBCOutcome
from vibench.sbc.run import run_sbc

ROUNDS = 2


@pytest.fixture(scope="module")
def registry() -> Registry:
    return discover()


def fit_seconds_per_replicate(outcome: SBCOutcome) -> float:
    row = next(r for r in outcome.rows if r["metric"] == "sbc_time_fit_s")
    return row["value"] / DEFAULT_REPLICATES


@pytest.mark.benchmark(group="sbc per replicate")
@pytest.mark.parametrize("method_spec", ["advi", "exact"])
@pytest.mark.parametrize("task_spec", ["linreg", "ppca"])
def test_vmapped_sbc_is_10x_faster_per_replicate(
    benchmark, registry: Registry, task_spec: str, method_spec: str
):
    task, choice = registry.task(task_spec), registry.method(method_spec)
    looped = [run_sbc(task, choice, DEFAULT_REPLICATES, vectorize=False) for _ in range(ROUNDS)]
    vmapped: list[SBCOutcome] = []
    benchmark.pedantic(
        lambda: vmapped.append(run_sbc(task, choice, DEFAULT_REPLICATES)), rounds=ROUNDS, iterations=1
    )
    assert all(o.run["status"] == "ok" for o in looped + vmapped)
    # the same SBC, only batched (vmapping may reassociate float sums: allow rare flips)
    assert (looped[0].ranks == vmapped[0].ranks).mean() > 0.99
    per_replicate = {
        "looped_fit_s": min(map(fit_seconds_per_replicate, looped)),
        "vmapped_fit_s": min(map(fit_seconds_per_replicate, vmapped)),
    }
    speedup = per_replicate["looped_fit_s"] / per_replicate["vmapped_fit_s"]
    benchmark.extra_info.update(
        task=task.label, method=choice.label, replicates=DEFAULT_REPLICATES, speedup=speedup,
        **per_replicate,
    )
    print(
        f"\n{task.label} / {choice.label}, {DEFAULT_REPLICATES} replicates: fit per replicate "
        f"looped {1e3 * per_replicate['looped_fit_s']:.2f} ms, vmapped "
        f"{1e3 * per_replicate['vmapped_fit_s']:.2f} ms: {speedup:.1f}x"
    )
