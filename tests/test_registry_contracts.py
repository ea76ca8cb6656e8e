"""Every registered task and method honours the typed protocols of vibench.core.

blackjax's lesson: callable fields typed only as ``Callable`` drift apart; this test
checks each registered object against the Protocol it claims to implement.
"""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
import typing

import pytest
from conftest import task_or_skip

from vibench.core import BudgetFn, FitFn, SupportsFn, Task
from vibench.data.files import DataFileError
from vibench.declarations import resolve
from vibench.registry import discover

REGISTRY = discover()
PARAM_TYPES = (int, float, bool, str)


def parameter_names(fn) -> list[str]:
    return list(inspect.signature(resolve(fn)).parameters)


def protocol_parameters(protocol) -> list[str]:
    return parameter_names(protocol.__call__)[1:]  # drop self


def check_config_class(cls) -> None:
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        assert kind in PARAM_TYPES or typing.get_origin(kind) is typing.Literal, (cls, field.name)
    cls()  # every field has a default
    hash(cls())  # configs are static arguments of compiled fits


@pytest.mark.parametrize("name", sorted(REGISTRY.methods))
def test_method_contract(name):
    method = REGISTRY.methods[name]
    check_config_class(method.Config)
    assert parameter_names(method.fit) == protocol_parameters(FitFn)
    assert len(parameter_names(method.supports)) == len(protocol_parameters(SupportsFn))
    if method.budget is not None:
        assert len(parameter_names(method.budget)) == len(protocol_parameters(BudgetFn))
    assert method.doc.strip(), "a method documents itself (vibench list shows it)"
    for task_name in REGISTRY.tasks:
        try:
            task = REGISTRY.task(task_name)
        except DataFileError:  # a real-data task without its files here (see conftest)
            continue
        ok, reason = method.supports(task)
        assert isinstance(ok, bool) and isinstance(reason, str)
        assert ok or reason, "a method says why it does not support a task"


@pytest.mark.parametrize("name", sorted(REGISTRY.tasks))
def test_task_contract(name):
    family = REGISTRY.tasks[name]
    check_config_class(family.Params)
    task = task_or_skip(REGISTRY, name)
    assert isinstance(task, Task) and task.name == name and task.label == name
    assert task.reference.provenance
    assert "exact" not in task.tags or task.reference.exact
    assert family.doc.strip()


def test_declarations_import_no_jax():
    """Names, parameters and docs of every built-in come without JAX (the CLI checks a
    request with them before importing it)."""
    code = (
        "import sys; from vibench.registry import discover; r = discover(); "
        "[m.Config() for m in r.methods.values()]; [t.Params() for t in r.tasks.values()]; "
        "heavy = [m for m in ('jax', 'numpyro', 'optax', 'arviz', 'numpy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_subpackage_is_packaged():
    """A non-editable install ships exactly the packages pyproject.toml lists."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(root).parts)
        for path in (root / "vibench").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert found <= listed, found - listed
