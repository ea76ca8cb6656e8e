"""Bayesian neural-net regression on the UCI benchmark sets, with the standard splits.

The protocol of Hernández-Lobato & Adams (2015, PBP), used by Gal & Ghahramani (2016,
MC dropout) and Lakshminarayanan et al. (2017, deep ensembles): one hidden layer of
ReLU units (50; 100 for protein: write ``uci[dataset=protein,hidden=100]``, as
:func:`vibench.tasks._uci.split_grid` does), 20 train/test splits (5 for protein),
inputs and targets normalized with the mean and sd of the training split only
(a constant input column keeps sd 1, as in PBP's code).

Model, on the normalized data (x_n, y_n), n = 1 … N: every weight and bias
w ~ N(0, prior_scale²); the network f(x) = w₂ᵀ relu(W₁ᵀx/√(d+1) + b₁/√(d+1))/√(H+1)
+ b₂/√(H+1) (PBP's scaling of each layer's pre-activations by √(fan-in + 1), so
prior_scale = 1 gives unit-scale activations); the noise precision γ ~ Gamma(6, 6)
(shape, rate: PBP's prior on it); y_n ~ N(f(x_n), 1/γ). Test metrics are in the
target's original units: the task's predictive undoes the target normalization,
y* = m + s·y*_n, so log p(y* | z) = log N(y*_n; f(x*), 1/γ) − log s.

Data come from the loader :mod:`vibench.data.uci` (``$VIBENCH_DATA`` or the user cache;
sha256-checked). The reference is not in parameter space (a network's modes are not
comparable coordinate by coordinate): a stored NUTS run is compared through the
posterior predictive (:mod:`vibench.metrics.reference_predictive`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, TaskFamily
from vibench.spec import Range

VERSION = "1"
PROTEIN_SPLITS = 5


@dataclass(frozen=True)
class UCIParams:
    """dataset: the UCI set; split: train/test split (0-19, 0-4 for protein); hidden:
    ReLU units of the hidden layer (the protocol: 50, 100 for protein); prior_scale:
    prior sd of every weight and bias."""

    dataset: Literal["boston", "concrete", "energy", "kin8nm", "naval", "power", "protein", "wine", "yacht"] = "boston"
    split: Annotated[int, Range(0, 19)] = 0
    hidden: Annotated[int, Range(1, 4096)] = 50
    prior_scale: Annotated[float, Range(0, 1000, low_open=True)] = 1.0

    def check(self) -> None:
        """protein has 5 splits."""
        if self.dataset == "protein" and self.split >= PROTEIN_SPLITS:
            raise ValueError(f"parameter split must be 0-{PROTEIN_SPLITS - 1} for dataset=protein; got {self.split}")


uci = TaskFamily(name="uci", version=VERSION, Params=UCIParams, build=Deferred("vibench.tasks._uci:build"), doc=__doc__)
