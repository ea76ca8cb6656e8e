"""Draws of held-out targets: the typed task extension predictive-distribution metrics need.

A regression task that can draw y*_i ~ p(y*_i | z) declares :class:`PredictiveDraw`;
with draws z_s of an approximation, y*_{i,s} is then a draw of its posterior predictive
at test point i, which :mod:`vibench.metrics.reference_predictive` compares with a
stored reference's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vibench.core import Array, Data, PRNGKey


class TargetDrawFn(Protocol):
    """``draw(z, held_out, key) -> (n_test,)``: one draw of every test target given the flat
    unconstrained latent ``z`` (independent across test points)."""

    def __call__(self, z: Array, held_out: Data, key: PRNGKey) -> Array: ...


@dataclass(frozen=True, eq=False)
class PredictiveDraw:
    """How to draw the task's test targets given one latent value (``draw``)."""

    draw: TargetDrawFn
