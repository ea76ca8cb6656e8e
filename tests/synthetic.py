"""Tasks and approximations built by hand, for metric tests: exact parameters, no fitting."""

from __future__ import annotations

import jax.numpy as jnp

from vibench.core import Approximation, Reference, Task
from vibench.families.draws import DrawKind, Draws
from vibench.families.gaussian import FullRank, MeanField


def meanfield(loc, scale) -> Approximation:
    params = {
        "loc": jnp.asarray(loc, jnp.float32),
        "log_scale": jnp.log(jnp.asarray(scale, jnp.float32)),
    }
    return Approximation(params, jnp.zeros(1), jnp.asarray(0), MeanField())


def fullrank(loc, cov) -> Approximation:
    chol = jnp.linalg.cholesky(jnp.asarray(cov, jnp.float32))
    params = {
        "loc": jnp.asarray(loc, jnp.float32),
        "log_diag": jnp.log(jnp.diag(chol)),
        "lower": chol,
    }
    return Approximation(params, jnp.zeros(1), jnp.asarray(0), FullRank())


def draws(values, kind: DrawKind) -> Approximation:
    return Approximation({"draws": jnp.asarray(values)}, jnp.zeros(1), jnp.asarray(0), Draws(kind))


def task_of(model, reference: Reference, extensions=()) -> Task:
    return Task(
        name="synthetic",
        label="synthetic",
        version="0",
        tags=frozenset(),
        model=model,
        data={},
        reference=reference,
        simulate=lambda key: ({}, {}),
        extensions=extensions,
    )
