"""Discovery of tasks and methods: built-ins, ``--plugins`` folders and entry points.

A task or method is any :class:`vibench.core.TaskFamily` or :class:`vibench.core.Method`
object defined at the top level of a module in ``vibench.tasks``, ``vibench.methods``,
a plug-in folder (every ``*.py`` file not starting with ``_``), or a module named by an
entry point in the group ``vibench.plugins`` (an entry point may also name one task
family or method object). Names must be unique across all of them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import pkgutil
import sys
import traceback
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from vibench.declarations import Method, TaskFamily
from vibench.spec import BudgetTooSmall, SpecError, canonical_label, check_config, make_config, parse_spec
from vibench.text import shorten

if TYPE_CHECKING:
    from vibench.core import Task

ENTRY_POINT_GROUP = "vibench.plugins"


@dataclass(frozen=True)
class MethodChoice:
    """A method with its parsed config and canonical label (e.g. ``advi[family=fullrank]``)."""

    method: Method
    config: Any
    label: str

    def with_budget(self, grad_evals: int, task: Task) -> MethodChoice:
        """The same method configured to spend at most ``grad_evals`` gradient
        evaluations on ``task``."""
        if self.method.budget is None:
            raise SpecError(f"method {self.method.name} cannot run under a gradient budget")
        if isinstance(grad_evals, bool) or not isinstance(grad_evals, int) or grad_evals < 1:
            raise SpecError(f"a budget is a whole number of gradient evaluations >= 1; got {grad_evals!r}")
        try:
            config = self.method.budget(self.config, grad_evals, task)
        except BudgetTooSmall as err:
            raise SpecError(f"method {self.label} {err}") from None
        except ValueError as err:
            raise SpecError(f"method {self.label}: {err}") from None
        check_config(config, f"method {self.label} under a budget of {grad_evals}")
        return MethodChoice(self.method, config, canonical_label(self.method.name, config))


@dataclass
class Registry:
    """The registered task families and methods, and the problems met while discovering
    them (``problems``: one line each, naming the file or entry point; the broken piece
    is left out, everything else is registered)."""

    tasks: dict[str, TaskFamily] = field(default_factory=dict)
    methods: dict[str, Method] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, obj: Any, origin: str) -> None:
        """Register ``obj`` if it is a task family or a method; ignore anything else.
        A name that is not a valid SPEC name, or one already taken, is a problem."""
        if isinstance(obj, TaskFamily):
            table, kind = self.tasks, "task"
        elif isinstance(obj, Method):
            table, kind = self.methods, "method"
        else:
            return
        if not _valid_name(obj.name):
            self.problems.append(
                f"{origin}: {kind} name {shorten(str(obj.name))!r} is not a valid name "
                "(a letter or _, then letters, digits, _ or -)"
            )
            return
        known = table.get(obj.name)
        if known is not None and known is not obj:
            self.problems.append(f"{origin}: {kind} name {obj.name!r} is already registered (skipped)")
            return
        table[obj.name] = obj

    def add_module(self, module: ModuleType, origin: str) -> None:
        for obj in vars(module).values():
            self.add(obj, origin)

    def task_family(self, spec: str) -> tuple[TaskFamily, Any]:
        """The family and checked parameters named by a task ``spec``, without building it
        (no JAX): every name and value is checked here."""
        name, params = parse_spec(spec)
        family = self.tasks.get(name)
        if family is None:
            raise SpecError(f"unknown task {shorten(name)!r}; valid: {', '.join(sorted(self.tasks))}")
        return family, make_config(family.Params, params, f"task {name}")

    def task(self, spec: str) -> Task:
        """Build the task named by ``spec``; its ``label`` is the canonical SPEC."""
        return _build(*self.task_family(spec))

    def method(self, spec: str) -> MethodChoice:
        name, params = parse_spec(spec)
        method = self.methods.get(name)
        if method is None:
            raise SpecError(f"unknown method {shorten(name)!r}; valid: {', '.join(sorted(self.methods))}")
        config = make_config(method.Config, params, f"method {name}")
        return MethodChoice(method, config, canonical_label(name, config))


def _valid_name(name: Any) -> bool:
    try:
        return isinstance(name, str) and parse_spec(name) == (name, {})
    except SpecError:
        return False


@lru_cache(maxsize=32)
def _build(family: TaskFamily, params: Any) -> Task:
    try:
        task = family.build(params)
    except ValueError as err:
        raise SpecError(f"task {canonical_label(family.name, params)}: {err}") from None
    return replace(task, label=canonical_label(family.name, params))


def _package_modules(package: str) -> list[ModuleType]:
    pkg = importlib.import_module(package)
    return [
        importlib.import_module(f"{package}.{info.name}")
        for info in pkgutil.iter_modules(pkg.__path__)
        if not info.name.startswith("_")
    ]


def _folder_modules(folder: Path, problems: list[str]) -> list[tuple[ModuleType, str]]:
    """The plug-in files of ``folder`` imported, with their paths; a file that fails to
    import is a problem (one line: the file and the error), not a crash."""
    if not folder.is_dir():
        raise SpecError(f"plug-in folder {shorten(str(folder))!r} does not exist")
    tag = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:8]
    modules = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = f"vibench_plugin_{tag}_{path.stem}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as err:  # noqa: BLE001 - a broken plug-in is reported, not fatal
                del sys.modules[name]
                problems.append(f"plug-in {path}: cannot be imported: {_one_line(err)}")
                continue
        modules.append((module, f"plug-in {path}"))
    return modules


def _one_line(err: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(err), err)).strip().splitlines()
    return shorten(text[-1] if text else type(err).__name__, 200)


def discover(plugin_dirs: tuple[Path, ...] = ()) -> Registry:
    """All tasks and methods: built-in, from entry points, and from ``plugin_dirs``
    (built-ins first, so a plug-in cannot take a built-in's name)."""
    registry = Registry()
    for package in ("vibench.tasks", "vibench.methods"):
        for module in _package_modules(package):
            registry.add_module(module, module.__name__)
    for folder in plugin_dirs:
        for module, origin in _folder_modules(Path(folder), registry.problems):
            registry.add_module(module, origin)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {entry.name}"
        try:
            loaded = entry.load()
        except Exception as err:  # noqa: BLE001 - a broken plug-in is reported, not fatal
            registry.problems.append(f"{origin}: cannot be imported: {_one_line(err)}")
            continue
        if isinstance(loaded, ModuleType):
            registry.add_module(loaded, origin)
        else:
            registry.add(loaded, origin)
    return registry
