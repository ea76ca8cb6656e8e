"""The command line: ``vibench list``, ``vibench run``, ``vibench sbc``, ``vibench report``,
``vibench table``.

Every name, SPEC and device is checked before anything runs or is written: a bad one
is a one-line error naming the valid choices, with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from vibench.harness import environment
from vibench.harness.runner import reference_draws, run_pair
from vibench.harness.store import DRAWS_STORED, DRAWS_STORED_MAX_DIM, append_reference_draws, append_runs
from vibench.metrics.records import METRIC_DRAWS
from vibench.registry import Registry, discover
from vibench.report.build import build_report
from vibench.report.summary import load_results, mean_and_se
from vibench.report.tables import FORMATS, available_metrics, format_table
from vibench.sbc.plots import format_summary, save_plots
from vibench.sbc.run import DEFAULT_DRAWS, DEFAULT_REPLICATES, run_sbc, write_sbc
from vibench.spec import SpecError

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


def _fitting_parent() -> argparse.ArgumentParser:
    """Options of the commands that fit methods and write results (``run``, ``sbc``)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--out", type=Path, default=Path("results"), metavar="DIR",
                        help="results directory (default: results/)")
    parent.add_argument("--device", choices=("cpu", "gpu"), default=None,
                        help="where to run (default: JAX's default device)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vibench", description="Benchmarks and diagnostics for variational inference."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    plugins, fitting = _plugin_parent(), _fitting_parent()

    listing = commands.add_parser("list", parents=[plugins], help="list tasks and methods")
    listing.add_argument("what", nargs="?", choices=("tasks", "methods"), help="only this kind")

    run = commands.add_parser(
        "run",
        parents=[plugins, fitting],
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
    run.add_argument("--draws", type=int, default=METRIC_DRAWS, metavar="N",
                     help=f"draws from q for the Monte Carlo metrics (default {METRIC_DRAWS})")
    run.add_argument("--budget", type=int, default=None, metavar="N",
                     help="give every method at most N gradient evaluations of the log joint "
                     "(equal-cost comparisons; default: each method's own config)")

    sbc = commands.add_parser(
        "sbc",
        parents=[plugins, fitting],
        help="simulation-based calibration of a method on a task",
        description="Simulate parameters and data from the task's model, fit the method on "
        "each data set, and test that the ranks of the true parameters among the posterior "
        "draws are uniform (chi-square and ECDF tests per parameter, Holm-corrected verdict; "
        "VSBC symmetry). Appends metric rows to --out, ranks to --out/_sbc/ and plots to "
        "--out/_sbc/_plots/, and prints a summary.",
    )
    sbc.add_argument("--task", required=True, metavar="SPEC", help="task SPEC")
    sbc.add_argument("--method", required=True, metavar="SPEC", help="method SPEC")
    sbc.add_argument("--replicates", type=int, default=DEFAULT_REPLICATES, metavar="R",
                     help=f"simulated data sets (default {DEFAULT_REPLICATES}; at least 10)")
    sbc.add_argument("--draws", type=int, default=DEFAULT_DRAWS, metavar="L",
                     help=f"posterior draws per data set; ranks are 0..L (default {DEFAULT_DRAWS})")
    sbc.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the replicates (default 0)")

    report = commands.add_parser(
        "report",
        help="write a static HTML report of a results directory",
        description="Render the results in DIR as static, self-contained HTML (no network "
        "requests, no scripts): OUT/index.html has a task x method grid of the headline "
        "metrics (mean +- standard error over seeds; unreliable k-hat, failed and NaN runs "
        "flagged), SBC verdicts, failed benchmark and SBC runs and the environment; "
        "OUT/<task>.html has every metric, accuracy against cost with the Pareto front, "
        "objective traces, k-hat per method, each method's draws over the reference draws "
        f"(tasks of at most {DRAWS_STORED_MAX_DIM} dimensions, whose runs keep {DRAWS_STORED} draws), "
        "SBC rank plots and the runs.",
    )
    report.add_argument("results", type=Path, metavar="DIR", help="results directory (the --out of vibench run)")
    report.add_argument("-o", "--out", type=Path, default=Path("reports"), metavar="OUT",
                        help="where to write the HTML (default: reports/)")

    table = commands.add_parser(
        "table",
        help="print a paper table of a results directory",
        description="Print a table of the results in DIR: rows are tasks (tasks x metrics with "
        "several metrics), columns methods, cells mean +- standard error over seeds (one seed: "
        "the estimate's own standard error), the best of each row in bold (higher is better "
        "for elbo, log_px_is, is_ess; lower for the rest). CSV is tidy and numeric: one row "
        "per task, metric and method, with a best column.",
    )
    table.add_argument("results", type=Path, metavar="DIR", help="results directory (the --out of vibench run)")
    table.add_argument("--format", choices=FORMATS, default="markdown", help="output format (default: markdown)")
    table.add_argument("--metric", action="append", metavar="M",
                       help="metric to show (repeatable; default: elbo_gap, log_px_is, khat, mean_error, "
                       "std_error, time_fit_s where present)")
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
    ok = frame[frame["metric"].isin(SUMMARY_METRICS) & (frame["status"] == "ok")]
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for (task, label, metric), group in ok.groupby(["task_label", "label", "metric"], sort=False):
        mean, se = mean_and_se(group["value"].to_numpy(), group["stderr"].to_numpy())
        cells.setdefault((task, label), {})[metric] = f"{mean:.4g} ± {se:.2g}"
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
    if args.budget is not None and args.budget < 1:
        raise SpecError("--budget must be at least 1")
    planned = plan(registry, args.task, args.method)
    if args.budget is not None:
        planned = [(task, [c.with_budget(args.budget, task) for c in choices]) for task, choices in planned]
    try:
        device = environment.resolve_device(args.device)
    except ValueError as err:
        raise SpecError(str(err)) from None
    frames = []
    pairs = [(task, choice) for task, choices in planned for choice in choices]
    for done, (task, choice) in enumerate(pairs, 1):
        print(f"[{done}/{len(pairs)}] {task.label} / {choice.label} ({args.seeds} seed(s)) ...",
              file=sys.stderr)
        outcomes = run_pair(task, choice, list(range(args.seeds)), device, args.draws)
        rows = [row for o in outcomes for row in o.rows]
        append_runs(args.out, rows, [t for o in outcomes for t in o.traces], [d for o in outcomes for d in o.draws])
        frames.append(pd.DataFrame(rows))
    for task in dict.fromkeys(task for task, _ in pairs):
        if reference := reference_draws(task):
            append_reference_draws(args.out, reference)
    print(summarize(pd.concat(frames, ignore_index=True)))
    print(f"results appended to {args.out}/", file=sys.stderr)
    return 0


def cmd_sbc(args: argparse.Namespace, registry: Registry) -> int:
    [(task, [choice])] = plan(registry, [args.task], [args.method])
    if args.replicates < 10:
        raise SpecError("--replicates must be at least 10 (two chi-square bins of expected count 5)")
    if args.draws < 1:
        raise SpecError("--draws must be at least 1")
    try:
        device = environment.resolve_device(args.device)
    except ValueError as err:
        raise SpecError(str(err)) from None
    print(f"SBC of {choice.label} on {task.label}: {args.replicates} replicates ...", file=sys.stderr)
    outcome = run_sbc(task, choice, args.replicates, args.draws, args.seed, device)
    ranks_file = write_sbc(args.out, outcome)
    print(format_summary(outcome))
    if ranks_file is not None:
        for path in [ranks_file, *save_plots(args.out, outcome)]:
            print(f"wrote {path}", file=sys.stderr)
    print(f"results appended to {args.out}/", file=sys.stderr)
    return 0 if outcome.run["status"] == "ok" else 1


def cmd_report(args: argparse.Namespace) -> int:
    try:
        pages = build_report(args.results, args.out)
    except FileNotFoundError as err:
        raise SpecError(str(err)) from None
    print(f"wrote {len(pages)} pages to {args.out}/", file=sys.stderr)
    print(pages[0])
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    try:
        results = load_results(args.results)
    except FileNotFoundError as err:
        raise SpecError(str(err)) from None
    valid = available_metrics(results)
    for metric in args.metric or ():
        if metric not in valid:
            raise SpecError(f"no metric {metric!r} in {args.results}; valid: {', '.join(valid)}")
    print(format_table(results, args.format, args.metric))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "report":
            return cmd_report(args)
        if args.command == "table":
            return cmd_table(args)
        registry = discover(tuple(args.plugins))
        if args.command == "list":
            print(_format_listing(registry, args.what))
            return 0
        if args.command == "sbc":
            return cmd_sbc(args, registry)
        return cmd_run(args, registry)
    except SpecError as err:
        print(f"vibench: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
