"""``vibench reference --task SPEC``: compute a task's reference by long NUTS and store it.

Exit status: 0 when the reference met posteriordb's bar and was written, 1 when it
missed a criterion (nothing written, unless ``--keep-failed``: then it is written
with ``passed: false``, which :func:`vibench.reference.artifact.load_reference`
refuses by default), 2 for bad input. Names and numbers are checked before JAX is
imported; JAX is imported inside :func:`run` only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vibench.harness.precision import DEFAULT_PRECISION, PRECISIONS, set_precision
from vibench.registry import Registry
from vibench.spec import SpecError


def add_parser(
    commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]
) -> argparse.ArgumentParser:
    """Add the ``reference`` subcommand to ``commands`` (an argparse subparsers object)."""
    parser = commands.add_parser(
        "reference",
        parents=parents,
        help="compute and store a task's reference posterior by long multi-chain NUTS",
        description="Run NUTS chains (vectorized, float64, window adaptation) on a task and store "
        "the draws with their moments, Monte Carlo standard errors, diagnostics, provenance and "
        "checksums in OUT/<task label>--v<task version>/. The run must meet posteriordb's bar: at "
        "least 10000 draws in all, rank-normalized split R-hat < 1.01 for every coordinate, no "
        "divergences, bulk and tail ESS >= 400; otherwise nothing is written (exit 1).",
    )
    parser.add_argument("--task", required=True, metavar="SPEC",
                        help="task SPEC, e.g. gaussian[dim=50,rho=0.95]")
    parser.add_argument("--out", type=Path, default=Path("references"), metavar="DIR",
                        help="references directory (default: references/)")
    parser.add_argument("--chains", type=int, default=4, metavar="C", help="vectorized chains (default 4)")
    parser.add_argument("--draws", type=int, default=2500, metavar="N",
                        help="draws per chain after warm-up (default 2500: 10000 with 4 chains)")
    parser.add_argument("--warmup", type=int, default=1000, metavar="W",
                        help="warm-up iterations per chain (default 1000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed (default 0)")
    parser.add_argument("--mass", choices=("dense", "diagonal"), default="dense",
                        help="mass matrix adapted in warm-up (default: dense)")
    parser.add_argument("--keep-failed", action="store_true",
                        help="write the reference even if it misses a criterion, marked passed: false")
    parser.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                        help=f"precision the task is built in (default {DEFAULT_PRECISION}: the runs' "
                        "default); the chains run in float64 either way, and the provenance says both")
    return parser


def _check_options(args: argparse.Namespace) -> None:
    least_values = (("--chains", args.chains, 1), ("--draws", args.draws, 4), ("--warmup", args.warmup, 0))
    for option, value, least in least_values:
        if value < least:
            raise SpecError(f"{option} must be at least {least}; got {value}")
    if args.seed < 0:
        raise SpecError(f"--seed must be at least 0; got {args.seed}")
    if args.out.exists() and not args.out.is_dir():
        raise SpecError(f"--out {args.out} is a file, not a directory")


def run(args: argparse.Namespace, registry: Registry) -> int:
    """Make, judge and store the reference of ``args.task``; print the checks."""
    try:
        _check_options(args)
        registry.task_family(args.task)
        set_precision(args.precision)  # before anything is traced
        from vibench.reference.artifact import write_reference
        from vibench.reference.make import make_reference
        from vibench.reference.summary import CriteriaError

        task = registry.task(args.task)
    except SpecError as err:
        print(f"vibench: error: {err}", file=sys.stderr)
        return 2
    print(f"reference for {task.label} (version {task.version}): {args.chains} chains x {args.draws} draws "
          f"after {args.warmup} warm-up, seed {args.seed} ...", file=sys.stderr)
    result = make_reference(
        task, chains=args.chains, draws=args.draws, warmup=args.warmup, seed=args.seed,
        dense_mass=args.mass == "dense",
    )
    for check in result.checks:
        print(check.describe())
    try:
        path = write_reference(result, args.out, keep_failed=args.keep_failed)
    except CriteriaError as err:
        print(f"vibench: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}" + ("" if result.passed else " (passed: false)"), file=sys.stderr)
    return 0 if result.passed else 1
