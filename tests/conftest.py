"""Shared fixtures: the registry, and a fitted-approximation helper that compiles once.

Real-data tasks (uci, mnist, lda's Lee corpus) read the data copies beside the
repository (``../shared/data``) when present, through ``VIBENCH_DATA`` (unless it is set
already); without them, the tests that need those files skip. The compilation cache of
``vibench run`` goes to a temporary ``XDG_CACHE_HOME``, not the user's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jax
import numpy as np
import pytest

from vibench.harness.runner import logdensity_of
from vibench.metrics.multimodal import FAIR_SHARE
from vibench.registry import Registry, discover
from vibench.structure.modes import Modes

MODE_DRAWS = 4096
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if SHARED_DATA.is_dir():
    os.environ.setdefault("VIBENCH_DATA", str(SHARED_DATA))
# vibench run keeps JAX's compilation cache in the user's cache directory: tests use their own
os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="vibench-tests-cache-"))


def task_or_skip(registry: Registry, spec: str):
    """The task ``spec``, or a skip when it reads data files this machine does not have."""
    from vibench.data.files import DataFileError

    try:
        return registry.task(spec)
    except DataFileError as err:
        pytest.skip(f"{spec}: {err}")


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


def modes_covered(registry: Registry, method_spec: str, seeds: int) -> np.ndarray:
    """Per seed, the fraction of ``mixture``'s modes holding at least FAIR_SHARE of their
    exact mass (the mode_coverage metric's rule), among MODE_DRAWS draws from q or among
    the particles, for ``seeds`` fits vmapped in one compilation."""
    task = registry.task("mixture")
    ld = logdensity_of(task)
    choice = registry.method(method_spec)
    keys = jax.random.split(jax.random.key(0), seeds)
    fit_many = jax.jit(jax.vmap(lambda key: choice.method.fit(task, ld, task.data, key, choice.config)))
    approx = fit_many(keys)
    if approx.has_density:
        draws = jax.vmap(lambda params, key: approx.family.sample(params, key, MODE_DRAWS))(approx.params, keys)
    else:
        draws = approx.params["draws"][:, 0]
    modes = task.extension(Modes)
    mass = np.asarray(jax.vmap(modes.mass)(draws))
    return np.mean(mass >= FAIR_SHARE * np.asarray(modes.weights), axis=1)
