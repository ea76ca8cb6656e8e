"""A run's floating-point precision: ``float32`` (the default) or ``float64``.

JAX's precision is process-global (its ``jax_enable_x64`` flag) and must be set before
anything is traced: :func:`set_precision` does that once, at the start of a command's
heavy part, for the task build, the fit and the metrics alike. Inside a process whose
precision must not change (a test worker, :mod:`vibench.reference.make`), use the
scoped :func:`precision_scope` (``jax.enable_x64``) instead.

Closed forms are the truth a run is measured against, so they are computed in float64
whatever the run's precision. A float64 run builds its task in float64 anyway. A
float32 run's task is built in float32 (its arrays follow the run), then built again
in a float64 scope by :func:`with_float64_truth`, whose exact reference numbers
(``log_evidence``, ``meanfield_elbo``, ``mean``, ``std``, ``gaussian``; stored as float64
NumPy) replace the float32 ones — provided both builds hold the same data to float32
rounding. Tasks that draw their data from JAX's random stream (``linreg``, ``ppca``)
do not: in x64 mode ``jax.random.normal`` draws float64 variates from other bits, so
the float64 build is another data set, and the float32 reference is kept, its
provenance saying so. The precision the closed forms were computed in is recorded
in the reference's provenance either way.

This module imports JAX only inside its functions, so the CLI can name
:data:`PRECISIONS` without loading it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vibench.core import Task
    from vibench.declarations import TaskFamily

PRECISIONS: tuple[str, ...] = ("float32", "float64")
DEFAULT_PRECISION = "float32"
FLOAT32_EPS = 2.0**-23
"""float32's machine epsilon (about 1.19e-7): its relative resolution."""
SAME_DATA_ULPS = 8
"""Two builds hold the same data when each value agrees within this many float32 ulps
of the largest magnitude (a float32 build's derived data carry a few roundings)."""


def check_precision(precision: str) -> str:
    """``precision`` itself, or ``ValueError`` naming the valid ones."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


def set_precision(precision: str) -> None:
    """Switch this process to ``precision`` (JAX's x64 mode on for float64, off for
    float32). Call it before anything is traced: arrays made before keep their dtype."""
    import jax

    jax.config.update("jax_enable_x64", check_precision(precision) == "float64")


def current_precision() -> str:
    """The precision JAX computes in now (scopes included)."""
    import jax.numpy as jnp

    return "float64" if jnp.zeros(()).dtype == jnp.float64 else "float32"


def precision_scope(precision: str) -> AbstractContextManager:
    """A context in which JAX computes in ``precision``; the process's precision is
    restored on leaving it."""
    import jax

    return jax.enable_x64(check_precision(precision) == "float64")


def _leaves(tree: Any) -> list:
    import jax
    import numpy as np

    return [np.asarray(leaf, np.float64) for leaf in jax.tree.leaves(tree)]


def same_data(task: Task, other: Task) -> bool:
    """Whether ``task`` and ``other`` hold the same data and held-out data, to float32
    rounding (:data:`SAME_DATA_ULPS`)."""
    import jax
    import numpy as np

    for a, b in ((task.data, other.data), (task.held_out, other.held_out)):
        if jax.tree.structure(a) != jax.tree.structure(b):
            return False
        for x, y in zip(_leaves(a), _leaves(b)):
            if x.shape != y.shape:
                return False
            scale = float(np.max(np.abs(x), initial=0.0))
            if not np.all(np.abs(x - y) <= SAME_DATA_ULPS * FLOAT32_EPS * max(scale, np.finfo(np.float32).tiny)):
                return False
    return True


def with_float64_truth(task: Task, family: TaskFamily, params: Any) -> Task:
    """``task`` with its exact reference numbers computed in float64 (see the module
    docstring); a task built in float64 is returned as it is, its provenance marked."""
    import numpy as np

    reference = task.reference
    if current_precision() == "float64":
        return replace(task, reference=replace(reference, provenance=f"{reference.provenance}; computed in float64"))
    with precision_scope("float64"):
        truth = family.build(params)
        ref64 = truth.reference
        if not same_data(task, truth):
            why = "computed in float32 (a float64 build draws other data from JAX's random stream)"
            return replace(task, reference=replace(reference, provenance=f"{reference.provenance}; {why}"))

        def f64(value: Any) -> Any:
            return None if value is None else np.asarray(value, np.float64)

        numbers = {
            "log_evidence": None if ref64.log_evidence is None else float(ref64.log_evidence),
            "meanfield_elbo": None if ref64.meanfield_elbo is None else float(ref64.meanfield_elbo),
            "gaussian": None if ref64.gaussian is None else tuple(f64(part) for part in ref64.gaussian),
        }
        if reference.exact and ref64.exact:  # Monte Carlo moments are draws of the run's, kept
            numbers.update(mean=f64(ref64.mean), std=f64(ref64.std))
    # Samplers, log densities and Monte Carlo fields stay the run's.
    kept = {k: v for k, v in numbers.items() if v is not None and getattr(reference, k) is not None}
    provenance = f"{reference.provenance}; exact numbers computed in float64, the run in float32"
    return replace(task, reference=replace(reference, provenance=provenance, **kept))
