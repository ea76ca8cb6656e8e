"""The command line: ``vibench list``, ``vibench run``.

Every name, SPEC and device is checked before anything runs or is written: a bad one
is a one-line error naming the valid choices, with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from vibench import environment
from vibench.registry import MethodChoice, Registry, discover
from vibench.runner import run_pair
from vibench.spec import SpecError
from vibench.store import append_runs

SUMMARY_METRICS = ("elbo", "log_px", "log_px_is", "khat", "kl", "mean_error", "std_error", "time_fit_s")


def _plugin_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--plugins",
        metavar="DIR",
        action="append",
        default=[],
        type=Path,
        help="a folder of task / method files to load beside the built-ins (repeatable)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vibench", description="Benchmarks and diagnostics for variational inference."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    plugins = _plugin_parent()

    listing = commands.add_parser("list", parents=[plugins], help="list tasks and methods")
    listing.add_argument("what", nargs="?", choices=("tasks", "methods"), help="only this kind")

    run = commands.add_parser(
        "run",
        parents=[plugins],
        help="run methods on a task and append the results",
        description="Fit methods on a task for several seeds; append Parquet results to --out "
        "and print a summary. SPEC is NAME or NAME[key=value,...], e.g. "
        "advi[family=fullrank,steps=5000] or gaussian[dim=50,rho=0.95].",
    )
    run.add_argument("--task", required=True, action="append", metavar="SPEC",
                     help="task SPEC (repeatable)")
    run.add_argument("--method", action="append", metavar="SPEC",
                     help="method SPEC (repeatable); default: every method that supports the task")
    run.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds 0..N-1 (default 1)")
    run.add_argument("--out", type=Path, default=Path("results"), metavar="DIR",
                     help="results directory (default: results/)")
    run.add_argument("--device", choices=("cpu", "gpu"), default=None,
                     help="where to run (default: JAX's default device)")
    run.add_argument("--draws", type=int, default=4096, metavar="N",
                     help="draws from q for the Monte Carlo metrics (default 4096)")
    return parser


def _format_listing(registry: Registry, what: str | None) -> str:
    lines = []
    if what in (None, "tasks"):
        lines.append("tasks:")
        for name, fam in sorted(registry.tasks.items()):
            lines.append(f"  {name:<12} {_first_line(fam.doc)}")
    if what in (None, "methods"):
        lines.append("methods:")
        for name, method in sorted(registry.methods.items()):
            lines.append(f"  {name:<12} {_first_line(method.doc)}")
    return "\n".join(lines)


def _first_line(doc: str) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""


def plan(registry: Registry, task_specs: list[str], method_specs: list[str] | None):
    """``[(task, [MethodChoice, ...]), ...]``; raises :class:`SpecError` on a bad request."""
    planned = []
    for spec in task_specs:
        task = registry.task(spec)
        if method_specs:
            choices = [registry.method(m) for m in method_specs]
            for choice in choices:
                ok, reason = choice.method.supports(task)
                if not ok:
                    raise SpecError(f"method {choice.label} does not support task {task.label}: {reason}")
        else:
            choices = [
                registry.method(name)
                for name, method in sorted(registry.methods.items())
                if method.supports(task)[0]
            ]
        planned.append((task, choices))
    return planned


def summarize(frame: pd.DataFrame) -> str:
    """A readable table: mean ± standard error per label and headline metric.

    One seed: the estimate's own standard error; several: the standard error over seeds.
    """
    ok = frame[frame["metric"].isin(SUMMARY_METRICS)]
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for (task, label, metric), group in ok.groupby(["task_label", "label", "metric"], sort=False):
        values = group["value"].to_numpy()
        se = group["stderr"].iloc[0] if len(values) == 1 else values.std(ddof=1) / len(values) ** 0.5
        cells.setdefault((task, label), {})[metric] = f"{values.mean():.4g} ± {se:.2g}"
    failed = frame[frame["status"] != "ok"].drop_duplicates("run_id")
    for _, row in failed.iterrows():
        cells.setdefault((row["task_label"], row["label"]), {})["status"] = (
            f"{row['status']}: {row['error']}"
        )
    table = pd.DataFrame.from_dict(cells, orient="index")
    columns = [m for m in SUMMARY_METRICS + ("status",) if m in table.columns]
    table = table.reindex(columns=columns).fillna("")
    table.index = [f"{t} / {label}" for t, label in table.index]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        return table.to_string()


def cmd_run(args: argparse.Namespace, registry: Registry) -> int:
    if args.seeds < 1:
        raise SpecError("--seeds must be at least 1")
    if args.draws < 2:
        raise SpecError("--draws must be at least 2")
    planned = plan(registry, args.task, args.method)
    try:
        device = environment.resolve_device(args.device)
    except ValueError as err:
        raise SpecError(str(err)) from None
    frames = []
    for task, choices in planned:
        for choice in choices:
            print(f"running {task.label} / {choice.label} ({args.seeds} seed(s)) ...", file=sys.stderr)
            outcomes = run_pair(task, choice, list(range(args.seeds)), device, args.draws)
            rows = [row for o in outcomes for row in o.rows]
            append_runs(args.out, rows, [t for o in outcomes for t in o.traces])
            frames.append(pd.DataFrame(rows))
    print(summarize(pd.concat(frames, ignore_index=True)))
    print(f"results appended to {args.out}/", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        registry = discover(tuple(args.plugins))
        if args.command == "list":
            print(_format_listing(registry, args.what))
            return 0
        return cmd_run(args, registry)
    except SpecError as err:
        print(f"vibench: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
