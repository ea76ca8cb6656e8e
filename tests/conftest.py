"""Shared fixtures: the registry, and a fitted-approximation helper that compiles once."""

from __future__ import annotations

import jax
import pytest

from vibench.registry import Registry, discover
from vibench.runner import logdensity_of


@pytest.fixture(scope="session")
def registry() -> Registry:
    return discover()


def fit(registry: Registry, task_spec: str, method_spec: str, seed: int = 0):
    """``(task, logdensity, approximation)`` for a method fitted on a task's own data."""
    task = registry.task(task_spec)
    choice = registry.method(method_spec)
    logdensity = logdensity_of(task)
    run = jax.jit(lambda data, key: choice.method.fit(task, logdensity, data, key, choice.config))
    return task, logdensity, run(task.data, jax.random.key(seed))
