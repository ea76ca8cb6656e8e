"""What a task family or a method declares: its name, version, parameters and where its
code is, importable without JAX.

A declaration is all the command line needs to check a request (names, parameters,
their types and ranges, documentation) before anything heavy is imported: importing
JAX alone takes about a second. The code that computes is named by a :class:`Deferred`
reference (``"module:attribute"``), imported on first call; a plug-in may pass its
functions directly instead, since a plug-in file is imported anyway.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from vibench.core import BudgetFn, BuildFn, FitFn, SupportsFn, Task

C = TypeVar("C")


@dataclass(frozen=True)
class Deferred:
    """A callable named ``"package.module:attribute"``, imported on its first call.

    It stands in for the function it names, so a declaration stays cheap to import;
    :meth:`resolve` gives the function itself (e.g. to inspect its signature).
    """

    target: str

    def __post_init__(self) -> None:
        module, sep, attribute = self.target.partition(":")
        if not (module and sep and attribute):
            raise ValueError(f"a deferred reference is 'module:attribute'; got {self.target!r}")

    def resolve(self) -> Any:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)


def resolve(fn: Any) -> Any:
    """The function behind ``fn``: itself, or what a :class:`Deferred` names."""
    return fn.resolve() if isinstance(fn, Deferred) else fn


LEARNED_MODEL = "generative"
"""The tag of a task whose model's own parameters are learned with q (a deep generative
model such as a VAE): it has no fixed posterior to approximate."""


def any_task(task: Task) -> tuple[bool, str]:
    """The ``supports`` of a method that needs only the log joint: every task with a fixed
    posterior (not one tagged :data:`LEARNED_MODEL`)."""
    if LEARNED_MODEL in task.tags:
        return False, "the task's model is learned with q (a deep generative model): no fixed posterior"
    return True, ""


def gradient_free(config: C, grad_evals: int, task: Task) -> C:
    """The ``budget`` of a method that uses no gradients (closed forms): it does not bind."""
    return config


@dataclass(frozen=True)
class TaskFamily(Generic[C]):
    """A registered task: a name, a frozen ``Params`` dataclass and ``build(params) -> Task``."""

    name: str
    version: str
    Params: type[C]
    build: BuildFn[C]
    doc: str = ""


@dataclass(frozen=True)
class Method(Generic[C]):
    """A registered inference method.

    ``Config`` is a frozen dataclass whose defaults are the method's defaults.
    ``jittable`` methods are pure JAX (``lax.scan`` loops), so the harness can
    compile them apart from running them and vmap them over data sets.
    ``budget`` maps a gradient-evaluation budget to a config (``--budget``); a method
    without one cannot run under a budget.
    """

    name: str
    version: str
    Config: type[C]
    fit: FitFn[C]
    supports: SupportsFn = any_task
    budget: BudgetFn[C] | None = None
    jittable: bool = True
    doc: str = ""

    def default_config(self) -> C:
        return self.Config()


def config_items(config: Any) -> dict[str, Any]:
    """The fields of a config or params dataclass, in declaration order."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
