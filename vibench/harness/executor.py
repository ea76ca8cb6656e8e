"""Executors of a grid: which runs are left to do, and where they run.

A grid is a list of :class:`Job` s, one per (task, method) pair with the seeds still to
run. Each run's outcome is handed to ``write`` as soon as it ends, so an interrupted
grid loses at most the run in progress, and ``vibench run --resume`` skips the runs
:func:`completed_runs` finds: those whose (config hash, seed) already has ``ok`` rows
(``failed``, ``nan`` and ``timeout`` runs are run again).

Two executors:

- :func:`run_in_process`: every pair in this process, one after another (no start-up
  cost; what a run does to the process, a hang or a crash, it does to the grid).
- :class:`Isolated`: every pair in a worker process (``spawn``, never ``fork``: JAX is
  multithreaded), which compiles the pair once and runs its seeds; one worker serves
  pair after pair until it has to be stopped. With a ``timeout``, the compile and each
  seed's run get that many seconds: past it the worker is killed, the run is a
  ``timeout`` row (a compile past it makes every seed left of its pair one) and the
  grid goes on in a fresh worker. A worker that dies (a segfault, an out-of-memory
  kill) turns the run in progress into a ``failed`` row the same way.

Why in-process is the default (no ``--timeout``): a worker costs one start-up, about
4.4 s on a 2-core CPU (measured: a 4-method ``linreg`` grid, warm compile cache, 6.1 s
in-process against 10.5 s isolated), as much as a tenth of a default ``ppca`` grid.

Ctrl-C (SIGINT): the first stops the grid after the run in progress (its row is
written), the second stops it now (an isolated worker is killed, the run in progress
is lost; in-process, Python's ``KeyboardInterrupt`` is raised, which compiled code
only sees when it returns). Workers ignore SIGINT: the supervisor decides.

This module imports no JAX at the top: a worker imports what it needs after it starts.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibench.metrics.records import METRIC_DRAWS

if TYPE_CHECKING:
    from vibench.core import Task
    from vibench.harness.runner import RunOutcome
    from vibench.registry import MethodChoice

POLL_S = 0.1
"""How often (seconds) a supervisor looks at its worker, its clock and Ctrl-C."""

Write = Callable[["RunOutcome"], None]


@dataclass(frozen=True)
class Job:
    """One (task, method) pair of a grid with the seeds left to run and its config hash."""

    task: Task
    choice: MethodChoice
    seeds: tuple[int, ...]
    config_hash: str


@dataclass(frozen=True)
class Settings:
    """What a worker process needs to rebuild the grid's tasks and methods and run them
    as the supervisor would (all plain values: they cross the process boundary)."""

    plugins: tuple[str, ...] = ()
    references: str | None = None
    precision: str = "float32"
    device: str | None = None
    n_draws: int = METRIC_DRAWS
    repeat: int = 1
    compile_cache: str | None = None


def completed_runs(out: Path) -> set[tuple[str, int]]:
    """``{(config hash, seed)}`` of the benchmark runs stored ``ok`` in ``out`` (none
    when it holds no results yet)."""
    from vibench.harness.store import read_metrics, skipped_files_as_lines

    if not Path(out).is_dir():
        return set()
    with skipped_files_as_lines():
        table = read_metrics(out)
    ok = table[(table["kind"] == "run") & (table["status"] == "ok")]
    return set(zip(ok["config_hash"], ok["seed"].astype(int)))


def plan_jobs(pairs: list[tuple[Task, MethodChoice]], seeds: int, done: set[tuple[str, int]]) -> list[Job]:
    """A :class:`Job` for every pair with seeds ``0..seeds-1`` not in ``done`` (pairs
    with none left are left out)."""
    from vibench.harness.precision import current_precision
    from vibench.harness.runner import config_hash

    jobs = []
    for task, choice in pairs:
        digest = config_hash(task, choice, current_precision())
        left = tuple(s for s in range(seeds) if (digest, s) not in done)
        if left:
            jobs.append(Job(task, choice, left, digest))
    return jobs


@dataclass
class Stop:
    """Ctrl-C presses seen while a grid runs (see the module doc)."""

    presses: int = 0
    raise_on_second: bool = False

    def handle(self, signum: int, frame: Any) -> None:
        self.presses += 1
        if self.presses == 1:
            print("vibench: stopping after the run in progress (Ctrl-C again to stop now)", file=sys.stderr)
        elif self.raise_on_second:
            raise KeyboardInterrupt


@contextmanager
def interruptible(raise_on_second: bool) -> Iterator[Stop]:
    """Within: SIGINT counted into the yielded :class:`Stop` instead of raising."""
    stop = Stop(raise_on_second=raise_on_second)
    previous = signal.signal(signal.SIGINT, stop.handle)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def announce(done: int, total: int, job: Job) -> None:
    print(f"[{done}/{total}] {job.task.label} / {job.choice.label} ({len(job.seeds)} seed(s)) ...", file=sys.stderr)


def run_in_process(jobs: list[Job], device: Any, settings: Settings, write: Write) -> bool:
    """Run ``jobs`` here, one after another; ``True`` when Ctrl-C stopped them early."""
    from vibench.harness.runner import iter_pair

    with interruptible(raise_on_second=True) as stop:
        for done, job in enumerate(jobs, 1):
            if stop.presses:
                return True
            announce(done, len(jobs), job)
            for outcome in iter_pair(job.task, job.choice, list(job.seeds), device, settings.n_draws, settings.repeat):
                write(outcome)
                if stop.presses:
                    return True
    return False


def _worker_death(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        why = ", e.g. killed for using too much memory" if -code == signal.SIGKILL else ""
        return f"the worker process died ({name}{why})"
    return f"the worker process died (exit code {code})"


@dataclass
class _Worker:
    process: Any
    conn: Any

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


@dataclass
class Isolated:
    """Runs jobs in worker processes (see the module doc); ``timeout`` seconds per
    compile and per run, or none."""

    settings: Settings
    device: Any
    timeout: float | None = None
    _worker: _Worker | None = field(default=None, repr=False)

    def run(self, jobs: list[Job], write: Write) -> bool:
        """Run ``jobs``; ``True`` when Ctrl-C stopped them early."""
        try:
            with interruptible(raise_on_second=False) as stop:
                for done, job in enumerate(jobs, 1):
                    if stop.presses:
                        return True
                    announce(done, len(jobs), job)
                    if self._run_job(job, write, stop):
                        return True
            return False
        finally:
            self._close()

    def _start(self) -> _Worker:
        if self._worker is None:
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe()
            process = context.Process(target=worker_main, args=(self.settings, theirs),
                                      name="vibench-worker", daemon=True)
            process.start()
            theirs.close()
            self._worker = _Worker(process, ours)
        return self._worker

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None

    def _close(self) -> None:
        if self._worker is not None and self._worker.process.is_alive():
            try:
                self._worker.conn.send(None)
                self._worker.process.join(timeout=5)
            except OSError:
                pass
        self._stop_worker()

    def _run_job(self, job: Job, write: Write, stop: Stop) -> bool:
        """Run one job's seeds, restarting the worker after a timeout or a death;
        ``True`` when Ctrl-C stopped it."""
        from vibench.harness.runner import run_base, unfinished_outcome

        base = run_base(job.task, job.choice, self.device)
        left = list(job.seeds)

        def give_up(seeds: list[int], status: str, error: str) -> None:
            for seed in seeds:
                write(unfinished_outcome(base, seed, status, error))
                left.remove(seed)

        while left:
            worker = self._start()
            worker.conn.send((job.task.label, job.choice.label, tuple(left), job.config_hash))
            phase, seed, deadline = "build", None, None
            while True:
                if stop.presses > 1:
                    self._stop_worker()
                    return True
                if worker.conn.poll(POLL_S):
                    try:
                        message = worker.conn.recv()
                    except (EOFError, OSError):
                        worker.process.join(timeout=5)
                        self._stop_worker()
                        give_up(left if seed is None else [seed], "failed", _worker_death(worker.process.exitcode))
                        break
                    if message[0] == "started":
                        phase, seed = message[1], message[2]
                        deadline = None if self.timeout is None else time.monotonic() + self.timeout
                    elif message[0] == "outcome":
                        write(message[1])
                        left.remove(message[1].rows[0]["seed"])
                        deadline = None
                        if stop.presses:
                            return True
                    elif message[0] == "error":
                        give_up(list(left), "failed", message[1])
                        break
                    else:  # "done"
                        break
                elif deadline is not None and time.monotonic() > deadline:
                    self._stop_worker()
                    what = "compile" if phase == "compile" else "run"
                    error = (f"the {what} did not finish within {self.timeout:g} s (--timeout); "
                             "its worker process was stopped")
                    give_up(list(left) if seed is None else [seed], "timeout", error)
                    break
        return False


def worker_main(settings: Settings, conn: Any) -> None:
    """A worker process: rebuild each job's task and method from their labels, run its
    seeds and send back ``("started", phase, seed)``, ``("outcome", RunOutcome)`` and
    ``("done",)`` (or ``("error", text)`` when the pair cannot be rebuilt); a ``None``
    job ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from vibench.harness.precision import set_precision

    set_precision(settings.precision)
    if settings.compile_cache is not None:
        from vibench.harness.cache import enable_compile_cache

        enable_compile_cache(Path(settings.compile_cache))
    from vibench.harness.environment import resolve_device
    from vibench.harness.plan import with_stored_reference
    from vibench.harness.runner import config_hash, iter_pair
    from vibench.registry import discover

    registry = discover(tuple(Path(p) for p in settings.plugins))
    device = resolve_device(settings.device)
    built: dict[str, Task] = {}
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        task_label, method_label, seeds, expected = job
        conn.send(("started", "build", None))
        try:
            if task_label not in built:
                built.clear()  # one task at a time: a task's data can be large
                task = registry.task(task_label)
                if settings.references is not None:
                    task = with_stored_reference(task, Path(settings.references))
                built[task_label] = task
            task = built[task_label]
            choice = registry.method(method_label)
            if config_hash(task, choice, settings.precision) != expected:
                raise ValueError(f"the worker rebuilt {task_label} / {method_label} with another configuration")
        except Exception as err:  # noqa: BLE001 - the supervisor writes it as a failed run
            conn.send(("error", f"{type(err).__name__}: {err}"))
            continue
        for outcome in iter_pair(task, choice, list(seeds), device, settings.n_draws, settings.repeat,
                                 started=lambda phase, seed: conn.send(("started", phase, seed))):
            conn.send(("outcome", replace(outcome, approximation=None)))
        conn.send(("done",))
