"""Make the stored NUTS reference of ``uci`` (boston split 0 by default) and print its verdict.

    VIBENCH_DATA=/work/shared/data python -m benchmarks.uci_reference --out results/references

posteriordb's bar (:data:`vibench.reference.summary.POSTERIORDB`) is not lowered: a run
that misses it is stored with ``passed: false`` (``--keep-failed``) and its measured
R-hat, ESS and divergences are printed. The artifact holds parameter draws; the task's
metrics use them only through the posterior predictive
(:func:`vibench.metrics.reference_predictive.predictive_reference`).
"""

from __future__ import annotations

import argparse
import time

from vibench.reference.artifact import write_reference
from vibench.reference.make import make_reference
from vibench.registry import discover


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="uci")
    parser.add_argument("--out", default="results/references")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=2500)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--max-tree-depth", type=int, default=10)
    parser.add_argument("--keep-failed", action="store_true")
    args = parser.parse_args()
    task = discover().task(args.task)
    clock = time.perf_counter()
    run = make_reference(
        task, chains=args.chains, draws=args.draws, warmup=args.warmup, max_tree_depth=args.max_tree_depth
    )
    print(f"{task.label}: {time.perf_counter() - clock:.0f} s, provenance {run.provenance['sample_s']:.0f} s sampling")
    for check in run.checks:
        print("  " + check.describe())
    print(f"  accept_prob {run.provenance['accept_prob']:.3f}, grad_evals {run.provenance['grad_evals']}")
    if run.passed or args.keep_failed:
        print("stored at", write_reference(run, args.out, keep_failed=args.keep_failed))


if __name__ == "__main__":
    main()
