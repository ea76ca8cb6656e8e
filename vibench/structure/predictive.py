"""Held-out prediction: the typed task extension that predictive metrics need.

A task with test data (:attr:`vibench.core.Task.held_out`) declares :class:`Predictive`:
the log density of each test point given one latent value, and, for regression or
classification, what the model predicts at each test point. The metrics in
:mod:`vibench.metrics.predictive` average these over an approximation's draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from vibench.core import Array, Data

PredictionKind = Literal["regression", "classification"]


class PointwiseFn(Protocol):
    """``fn(z, held_out) -> (n_test, ...)``: one value per test point at one latent ``z``
    of shape ``(dim,)`` (flat, unconstrained, as :attr:`vibench.core.LogDensity.logp`)."""

    def __call__(self, z: Array, held_out: Data) -> Array: ...


class ExactLpdFn(Protocol):
    """``exact_lpd(held_out) -> (n_test,)``: log p(y*_i | training data), the exact
    posterior predictive log density of each test point."""

    def __call__(self, held_out: Data) -> Array: ...


@dataclass(frozen=True, eq=False)
class Predictive:
    """How a task's model predicts its held-out points, given a latent value.

    ``log_lik(z, held_out) -> (n_test,)``: log p(y*_i | z), each test point's log
    density at the flat unconstrained latent ``z``. ``kind`` and ``mean`` (both or
    neither): for ``"regression"``, ``mean(z, held_out) -> (n_test,)`` is E[y*_i | z];
    for ``"classification"``, ``(n_test, n_classes)`` class probabilities
    p(y*_i = c | z). ``target``: the key of ``held_out`` holding the observed y*
    (real values, or class indices 0 … n_classes − 1). ``exact_lpd``: the exact
    posterior predictive log density per test point, where the task knows it.
    """

    log_lik: PointwiseFn
    target: str
    kind: PredictionKind | None = None
    mean: PointwiseFn | None = None
    exact_lpd: ExactLpdFn | None = None

    def __post_init__(self) -> None:
        if (self.kind is None) != (self.mean is None):
            raise ValueError("Predictive needs kind and mean together (or neither)")
        if self.kind not in (None, "regression", "classification"):
            raise ValueError(f"Predictive kind is 'regression' or 'classification'; got {self.kind!r}")
