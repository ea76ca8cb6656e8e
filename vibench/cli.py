"""The command line: ``vibench list``, ``show``, ``run``, ``sbc``, ``reference``, ``report``,
``table``, ``compare``.

Every name, SPEC, number and output folder is checked before anything runs or is
written: a bad one is a one-line error naming the valid choices, with exit code 2.
Names and parameters are checked from the JAX-free declarations first (an answer in a
fraction of a second); JAX and the fitting code are imported only for a request that
passed. ``vibench run`` exits 1 when any run ended ``failed``, ``nan`` or ``timeout`` (its
rows are written and the summary lists it), 130 when Ctrl-C stopped it (the runs that
finished are written), 0 when every run is ok.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vibench.compare import DEFAULT_ALPHA, DEFAULT_FACTOR, DEFAULT_Z
from vibench.compare import FORMATS as COMPARE_FORMATS
from vibench.harness import DRAWS_STORED, DRAWS_STORED_MAX_DIM, RUNS_PREFIX
from vibench.harness.plan import check_specs
from vibench.harness.precision import DEFAULT_PRECISION, PRECISIONS, set_precision
from vibench.metrics.records import METRIC_DRAWS
from vibench.reference import command as reference
from vibench.registry import Registry, discover
from vibench.report import FORMATS, LAYOUTS
from vibench.sbc import DEFAULT_DRAWS, DEFAULT_REPLICATES
from vibench.spec import SpecError, parameters
from vibench.text import first_line, printable, shorten

MAX_SEEDS = 10_000
MAX_DRAWS = 2**20
MAX_BUDGET = 10**12
MIN_REPLICATES = 10
MAX_REPEAT = 1000
MAX_TIMEOUT = 7 * 24 * 3600.0


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
    parent.add_argument("--nested", action="store_true",
                        help="allow --out inside another results directory (readers of the outer "
                        "one never read it)")
    parent.add_argument("--device", choices=("cpu", "gpu"), default=None,
                        help="where to run (default: JAX's default device)")
    parent.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                        help=f"floating-point precision of the task build, fit and metrics (default "
                        f"{DEFAULT_PRECISION}; closed-form references are computed in float64 either way)")
    parent.add_argument("--no-compile-cache", dest="compile_cache", action="store_false",
                        help="do not use JAX's persistent compilation cache (default: on, in "
                        "$XDG_CACHE_HOME/vibench/jax or ~/.cache/vibench/jax)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vibench", description="Benchmarks and diagnostics for variational inference."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    plugins, fitting = _plugin_parent(), _fitting_parent()

    listing = commands.add_parser("list", parents=[plugins], help="list tasks and methods with their parameters")
    listing.add_argument("what", nargs="?", choices=("tasks", "methods"), help="only this kind")
    show = commands.add_parser("show", parents=[plugins], help="describe one task or method in full")
    show.add_argument("name", metavar="NAME", help="a task or method name")

    run = commands.add_parser(
        "run",
        parents=[plugins, fitting],
        help="run methods on a task and append the results",
        description="Fit methods on a task for several seeds; append Parquet results to --out "
        "and print a summary. SPEC is NAME or NAME[key=value,...], e.g. "
        "advi[family=fullrank,steps=5000] or gaussian[dim=50,rho=0.95] (vibench show NAME lists "
        "the parameters). Each run is written as soon as it ends. Exit code 0: every run ok; 1: "
        "some run failed, gave NaN or timed out (its rows are written and listed); 2: bad input, "
        "nothing run; 130: stopped by Ctrl-C (the first stops after the run in progress, the "
        "second at once).",
    )
    run.add_argument("--task", required=True, action="append", metavar="SPEC",
                     help="task SPEC (repeatable)")
    run.add_argument("--method", action="append", metavar="SPEC",
                     help="method SPEC (repeatable); default: every method that supports the task")
    run.add_argument("--seeds", type=int, default=1, metavar="N",
                     help=f"seeds 0..N-1 (default 1, at most {MAX_SEEDS})")
    run.add_argument("--draws", type=int, default=METRIC_DRAWS, metavar="N",
                     help=f"draws from q for the Monte Carlo metrics (default {METRIC_DRAWS})")
    run.add_argument("--references", type=Path, default=None, metavar="DIR",
                     help="measure each task against its stored reference in DIR where there is one "
                     "(made by vibench reference; a stale or corrupt one is refused)")
    run.add_argument("--budget", type=int, default=None, metavar="N",
                     help="give every method at most N gradient evaluations of the log joint "
                     "(equal-cost comparisons; default: each method's own config)")
    run.add_argument("--repeat", type=int, default=1, metavar="R",
                     help="time each seed's compiled fit R times, all timings kept in --out/_timings/ "
                     f"for vibench compare's rank test (default 1, at most {MAX_REPEAT}; time_fit_s is the first)")
    run.add_argument("--resume", action="store_true",
                     help="skip the runs (config hash and seed) already stored ok in --out; failed, NaN "
                     "and timed-out runs are run again")
    run.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                     help="run each task x method pair in a worker process and give its compile and "
                     "each seed's run at most SECONDS: past it the worker is killed and the run is a "
                     "timeout row (default: no limit, everything in this process)")

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
                     help=f"simulated data sets (default {DEFAULT_REPLICATES}; at least {MIN_REPLICATES})")
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
        "several metrics) and columns methods, or the other way round (--rows), cells mean +- "
        "standard error over seeds (one seed: the estimate's own standard error). The best of a "
        "task and metric is in bold only when it beats every other method by more than "
        "2 sqrt(se1^2 + se2^2); otherwise the leaders within that margin are marked as tied. CSV "
        "is tidy and numeric: one row per task, metric and method, with a best column (best, tie "
        "or empty).",
    )
    table.add_argument("results", type=Path, metavar="DIR", help="results directory (the --out of vibench run)")
    table.add_argument("--format", choices=FORMATS, default="markdown", help="output format (default: markdown)")
    table.add_argument("--metric", action="append", metavar="M",
                       help="metric to show (repeatable; default: elbo_gap, log_px_is, khat, mean_error, "
                       "std_error, time_fit_s where present)")
    table.add_argument("--rows", choices=LAYOUTS, default="auto",
                       help="what the rows are: task (tasks x metrics; methods in columns), method (tasks "
                       "x metrics in columns), or auto (default): tasks, unless there are more methods than "
                       "fit as columns and methods in rows give fewer columns")

    reference.add_parser(commands, [plugins])

    gate = commands.add_parser(
        "compare",
        help="compare two results directories: the CI regression gate",
        description="Pair the runs of BASE and NEW by task, method and device (seeds are "
        "replicates) and judge each metric: accuracy by the standardized difference of means "
        "(|z| >= --z and beyond the metric's tolerance), speed by the ratio of median times "
        "(beyond --factor) and a Mann-Whitney test of the raw timings (p < --alpha; record "
        "enough with vibench run --repeat R), gradient evaluations exactly, SBC by a newly "
        "rejected run. A task or method version change is incomparable; a changed package "
        "version, device or host turns a speed change into drift. Exit code 1: some row "
        "regressed; 0: none did; 2: bad input.",
    )
    gate.add_argument("base", type=Path, metavar="BASE", help="results directory of the baseline")
    gate.add_argument("new", type=Path, metavar="NEW", help="results directory of the change")
    gate.add_argument("--format", choices=COMPARE_FORMATS, default="text",
                      help="text (default), markdown (a pull-request comment) or json")
    gate.add_argument("--z", type=float, default=DEFAULT_Z, help=f"accuracy threshold on |z| (default {DEFAULT_Z:g})")
    gate.add_argument("--factor", type=float, default=DEFAULT_FACTOR,
                      help=f"speed: ratio of medians that counts (default {DEFAULT_FACTOR:g})")
    gate.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                      help=f"speed: rank-test significance level (default {DEFAULT_ALPHA:g})")
    return parser


def _parameter_lines(cls: type, indent: str) -> list[str]:
    rows = [(p.name, p.type, p.default, p.valid, p.doc) for p in parameters(cls)]
    if not rows:
        return [f"{indent}(no parameters)"]
    width = [max(len(printable(row[i])) for row in rows) for i in range(4)]
    return [
        indent + "  ".join(printable(v).ljust(w) for v, w in zip(row[:4], width)) + (f"  {printable(row[4])}" if row[4] else "")
        for row in rows
    ]


def format_listing(registry: Registry, what: str | None) -> str:
    """Every task and method: name, the first line of its doc, and its parameters
    (name, type, default, valid values)."""
    lines = []
    kinds = (("tasks", registry.tasks, "Params"), ("methods", registry.methods, "Config"))
    for kind, table, attribute in kinds:
        if what not in (None, kind):
            continue
        lines.append(f"{kind}:")
        for name, obj in sorted(table.items()):
            lines.append(f"  {name:<12} {first_line(obj.doc or '', 100)}")
            lines.extend(_parameter_lines(getattr(obj, attribute), " " * 6))
    return "\n".join(lines)


def format_show(registry: Registry, name: str) -> str:
    """One task or method: its whole doc and its parameters."""
    found = [(kind, obj, attribute) for kind, table, attribute in
             (("task", registry.tasks, "Params"), ("method", registry.methods, "Config"))
             if (obj := table.get(name)) is not None]
    if not found:
        valid = ", ".join(sorted({*registry.tasks, *registry.methods}))
        raise SpecError(f"no task or method {shorten(name)!r}; valid: {valid}")
    lines = []
    for kind, obj, attribute in found:
        lines.append(f"{kind} {obj.name} (version {printable(obj.version)})")
        lines.extend("  " + printable(line) for line in (obj.doc or "").strip().splitlines())
        lines.append("  parameters (name, type, default, valid values):")
        lines.extend(_parameter_lines(getattr(obj, attribute), "    "))
    return "\n".join(lines)


def _check_count(value: int, option: str, low: int, high: int) -> None:
    if not low <= value <= high:
        raise SpecError(f"{option} must be between {low} and {high}; got {value}")


def check_out(out: Path, nested: bool) -> None:
    """``out`` must be a writable directory or creatable as one, and (unless ``nested``)
    not inside another results directory, whose readers would not see it."""
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out {shorten(str(out))!r} is a file, not a directory")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise SpecError(f"--out {shorten(str(out))!r}: {shorten(str(existing))!r} is not a writable directory")
    if not nested:
        for parent in out.resolve().parents:
            if parent.is_dir() and any(parent.glob(f"{RUNS_PREFIX}*.parquet")):
                raise SpecError(
                    f"--out {shorten(str(out))!r} is inside the results directory {shorten(str(parent))!r}; "
                    "choose another folder, or pass --nested to keep it there (reports of the outer "
                    "directory do not read it)"
                )


def _device(kind: str | None):
    from vibench.harness import environment

    try:
        return environment.resolve_device(kind)
    except ValueError as err:
        raise SpecError(str(err)) from None


def cmd_run(args: argparse.Namespace, registry: Registry) -> int:
    check_specs(registry, args.task, args.method)
    _check_count(args.seeds, "--seeds", 1, MAX_SEEDS)
    _check_count(args.draws, "--draws", 2, MAX_DRAWS)
    _check_count(args.repeat, "--repeat", 1, MAX_REPEAT)
    if args.budget is not None:
        _check_count(args.budget, "--budget", 1, MAX_BUDGET)
    if args.timeout is not None and not 0 < args.timeout <= MAX_TIMEOUT:
        raise SpecError(f"--timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT}; got {args.timeout:g}")
    check_out(args.out, args.nested)
    if args.references is not None and not args.references.is_dir():
        raise SpecError(f"--references {shorten(str(args.references))!r} is not a directory")
    if args.timeout is not None:  # the supervisor and its worker share a GPU: neither takes it all
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    set_precision(args.precision)  # before anything is traced
    cache = _compile_cache(args.compile_cache)

    import pandas as pd

    from vibench.harness.executor import Isolated, Settings, completed_runs, plan_jobs, run_in_process
    from vibench.harness.plan import plan
    from vibench.harness.runner import reference_draws
    from vibench.harness.store import append_reference_draws, append_runs, skipped_files_as_lines
    from vibench.harness.timings import append_timings
    from vibench.report.console import run_summary

    planned = plan(registry, args.task, args.method, args.budget, args.references)
    device = _device(args.device)
    pairs = [(task, choice) for task, choices in planned for choice in choices]
    done = completed_runs(args.out) if args.resume else set()
    jobs = plan_jobs(pairs, args.seeds, done)
    if args.resume:
        skipped = len(pairs) * args.seeds - sum(len(job.seeds) for job in jobs)
        print(f"--resume: {skipped} run(s) already stored ok in {args.out}/, skipped", file=sys.stderr)
    frames = []

    def write(outcome) -> None:  # every run is stored as soon as it ends
        append_runs(args.out, outcome.rows, outcome.traces, outcome.draws)
        append_timings(args.out, outcome.timings)
        frames.append(pd.DataFrame(outcome.rows))

    settings = Settings(
        plugins=tuple(str(p) for p in args.plugins),
        references=None if args.references is None else str(args.references),
        precision=args.precision,
        device=args.device,
        n_draws=args.draws,
        repeat=args.repeat,
        compile_cache=None if cache is None else str(cache),
    )
    if args.timeout is None:
        try:
            interrupted = run_in_process(jobs, device, settings, write)
        except KeyboardInterrupt:  # the second Ctrl-C: the run in progress is lost
            interrupted = True
    else:
        interrupted = Isolated(settings, device, args.timeout).run(jobs, write)
    if not interrupted:
        with skipped_files_as_lines():  # a corrupt stored reference file: one warning line
            for task in dict.fromkeys(task for task, _ in pairs):
                if reference := reference_draws(task):
                    append_reference_draws(args.out, reference)
    if not frames:
        print(f"nothing left to run: every run is stored ok in {args.out}/", file=sys.stderr)
        return 130 if interrupted else 0
    frame = pd.concat(frames, ignore_index=True)
    print(run_summary(frame))
    unfinished = frame[frame["status"] != "ok"]["run_id"].nunique()
    print(f"results appended to {args.out}/", file=sys.stderr)
    if unfinished:
        print(f"vibench: {unfinished} run(s) did not finish ok (listed above)", file=sys.stderr)
    if interrupted:
        print("vibench: interrupted; the runs that finished are written (rerun with --resume to do the rest)",
              file=sys.stderr)
        return 130
    return 1 if unfinished else 0


def _compile_cache(enabled: bool) -> Path | None:
    """Turn JAX's persistent compilation cache on (its folder), unless ``enabled`` is false."""
    if not enabled:
        return None
    from vibench.harness.cache import enable_compile_cache

    return enable_compile_cache()


def cmd_sbc(args: argparse.Namespace, registry: Registry) -> int:
    check_specs(registry, [args.task], [args.method])
    _check_count(args.replicates, "--replicates", MIN_REPLICATES, MAX_SEEDS)
    _check_count(args.draws, "--draws", 1, MAX_DRAWS)
    check_out(args.out, args.nested)
    set_precision(args.precision)  # before anything is traced
    _compile_cache(args.compile_cache)

    from vibench.harness.plan import plan
    from vibench.sbc.plots import format_summary, save_plots
    from vibench.sbc.records import write_sbc
    from vibench.sbc.run import run_sbc

    [(task, [choice])] = plan(registry, [args.task], [args.method])
    device = _device(args.device)
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
    from vibench.harness.store import NotResultsError, nested_results, skipped_files_as_lines
    from vibench.report.build import build_report

    with skipped_files_as_lines():
        try:
            pages = build_report(args.results, args.out)
        except NotResultsError as err:
            raise SpecError(str(err)) from None
    for nested in nested_results(args.results):
        print(f"vibench: note: not read: {nested}/ holds results of its own (report it on its own)",
              file=sys.stderr)
    print(f"wrote {len(pages)} pages to {args.out}/", file=sys.stderr)
    print(pages[0])
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from vibench.harness.store import NotResultsError, nested_results, skipped_files_as_lines
    from vibench.report.summary import load_results
    from vibench.report.tables import available_metrics, format_table

    with skipped_files_as_lines():
        try:
            results = load_results(args.results)
        except NotResultsError as err:
            raise SpecError(str(err)) from None
    valid = available_metrics(results)
    for metric in args.metric or ():
        if metric not in valid:
            raise SpecError(f"no metric {metric!r} in {args.results}; valid: {', '.join(valid)}")
    for nested in nested_results(args.results):
        print(f"vibench: note: not read: {nested}/ holds results of its own (report it on its own)",
              file=sys.stderr)
    print(format_table(results, args.format, args.metric, args.rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "report":
            return cmd_report(args)
        if args.command == "table":
            return cmd_table(args)
        if args.command == "compare":
            from vibench.compare.command import cmd_compare

            return cmd_compare(args)
        registry = discover(tuple(args.plugins))
        for problem in registry.problems:
            print(f"vibench: warning: {printable(problem)}", file=sys.stderr)
        if args.command == "list":
            print(format_listing(registry, args.what))
            return 0
        if args.command == "show":
            print(format_show(registry, args.name))
            return 0
        if args.command == "reference":
            return reference.run(args, registry)
        if args.command == "sbc":
            return cmd_sbc(args, registry)
        return cmd_run(args, registry)
    except SpecError as err:
        print(f"vibench: error: {shorten(str(err), 1000)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
