"""A run's floating-point precision: ``float32`` (the default) or ``float64``.

JAX's precision is process-global (its ``jax_enable_x64`` flag) and must be set before
anything is traced: :func:`set_precision` does that once, at the start of a command's
heavy part, for the task build, the fit and the metrics alike. Inside a process whose
precision must not change (a test worker, :mod:`vibench.reference.make`), use the
scoped :func:`precision_scope` (``jax.enable_x64``) instead.

Closed forms are the truth a run is measured against, so they are computed in float64
whatever the run's precision: tasks compute them with :func:`in_float64`. And tasks make
their data (and the constants of their models) with :func:`in_float32`, so a float32 and
a float64 run of one task see one data set.

This module imports JAX only inside its functions, so the CLI can name
:data:`PRECISIONS` without loading it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

PRECISIONS: tuple[str, ...] = ("float32", "float64")
DEFAULT_PRECISION = "float32"
FLOAT32_EPS = 2.0**-23
"""float32's machine epsilon (about 1.19e-7): its relative resolution."""


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


def in_float32(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` computed in float32 whatever the process's precision, its floating
    outputs then held in the process's precision: how tasks make their data and the
    constants of their models, so a float32 and a float64 run of one task see the same
    numbers (in x64 mode ``jax.random.normal`` draws other variates, and arithmetic
    rounds differently). Closed forms take float64 copies of them (:func:`in_float64`)."""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(False):
        out = fn(*args)
    run_float = jnp.result_type(float)
    return jax.tree.map(
        lambda leaf: leaf.astype(run_float) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf, out
    )


def in_float64(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` computed in float64 whatever the process's precision, floating inputs
    promoted to float64 and every output returned as float64 NumPy: how tasks compute
    their closed forms. Constants ``fn`` closes over are not promoted: pass them as
    arguments, or close over float64 NumPy copies (a float32 constant times a float32
    constant is computed in float32 even here)."""
    import jax
    import numpy as np

    def promote(leaf: Any) -> Any:
        array = np.asarray(leaf)
        return array.astype(np.float64) if np.issubdtype(array.dtype, np.floating) else leaf

    with jax.enable_x64(True):
        out = fn(*jax.tree.map(promote, args))
        return jax.tree.map(lambda leaf: np.asarray(leaf, np.float64), out)
