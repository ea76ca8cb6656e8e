"""The plan of a grid: which tasks are built and which methods run on each, checked in
full before any fit.

Checking happens in two stages, so that a bad request is answered fast: the names and
parameters of every SPEC first, from the JAX-free declarations
(:func:`check_specs`); then the tasks are built and each method's ``supports`` and
``budget`` asked (:func:`plan`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from vibench.registry import MethodChoice, Registry
from vibench.spec import SpecError

if TYPE_CHECKING:
    from vibench.core import Task

Plan = list[tuple["Task", list[MethodChoice]]]


def check_specs(registry: Registry, task_specs: list[str], method_specs: list[str] | None) -> None:
    """Raise :class:`SpecError` on the first unknown name or invalid parameter (no JAX)."""
    for spec in task_specs:
        registry.task_family(spec)
    for spec in method_specs or ():
        registry.method(spec)


def with_stored_reference(task: Task, references: Path) -> Task:
    """``task`` measured against its stored reference in ``references`` when there is one
    (made by ``vibench reference``); a stale, corrupt or failed one is a
    :class:`SpecError`, never silently used or skipped."""
    from vibench.reference.artifact import ReferenceArtifactError, artifact_path, load_reference

    path = artifact_path(references, task)
    if not path.exists():
        return task
    try:
        return replace(task, reference=load_reference(path, task))
    except ReferenceArtifactError as err:
        raise SpecError(str(err)) from None


def plan(
    registry: Registry,
    task_specs: list[str],
    method_specs: list[str] | None,
    budget: int | None = None,
    references: Path | None = None,
) -> Plan:
    """``[(task, [MethodChoice, ...]), ...]``: every method that supports each task, or
    the ones asked for (each must support every task), configured for ``budget``
    gradient evaluations when given; a task with a stored reference in ``references``
    is measured against it. Raises :class:`SpecError` on a bad request."""
    planned = []
    for spec in task_specs:
        task = registry.task(spec)
        if references is not None:
            task = with_stored_reference(task, references)
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
        if budget is not None:
            choices = [choice.with_budget(budget, task) for choice in choices]
        planned.append((task, choices))
    return planned
