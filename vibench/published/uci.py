"""Published test log-likelihood (nats per point, higher is better) and RMSE on the UCI
regression sets under the standard splits, each row with its source.

Sources, copied number for number:

- :data:`MC_DROPOUT`: Gal & Ghahramani's DropoutUncertaintyExps README (commit
  6eb4497), "Grid Search (new)" columns: MC dropout with hyperparameters grid-searched
  on a validation split of each training split; ± is the standard error over splits.
- :data:`LAKSHMINARAYANAN_2017`: Lakshminarayanan, Pritzel & Blundell (2017), "Simple
  and Scalable Predictive Uncertainty Estimation using Deep Ensembles", Table 1: PBP
  (Hernández-Lobato & Adams 2015), MC dropout (Gal & Ghahramani 2016, the paper's
  original numbers) as reported in their papers, and deep ensembles (5 networks). The
  table reports NLL; here ``ll = −NLL``. The table does not say whether ± is a standard
  error or a standard deviation over splits (the deep-ensemble spreads suggest the
  latter).
"""

from __future__ import annotations

from typing import NamedTuple


class Published(NamedTuple):
    """One published (method, data set) result: test LL and RMSE with their ± as printed."""

    method: str
    dataset: str
    ll: float
    ll_pm: float
    rmse: float
    rmse_pm: float
    source: str


GAL_README = "Gal & Ghahramani, DropoutUncertaintyExps README (6eb4497), grid search; ± = se over splits"
DE_TABLE = "Lakshminarayanan et al. 2017, Table 1 (LL = −NLL)"

# (dataset, rmse, rmse ±, ll, ll ±)
_MC_DROPOUT_GRID = (
    ("boston", 2.90, 0.18, -2.40, 0.04),
    ("concrete", 4.82, 0.16, -2.93, 0.02),
    ("energy", 0.54, 0.06, -1.21, 0.01),
    ("kin8nm", 0.08, 0.00, 1.14, 0.01),
    ("naval", 0.00, 0.00, 4.45, 0.00),
    ("power", 4.01, 0.04, -2.80, 0.01),
    ("protein", 4.27, 0.02, -2.87, 0.00),
    ("wine", 0.62, 0.01, -0.93, 0.01),
    ("yacht", 0.67, 0.05, -1.25, 0.01),
)
# dataset: (PBP, MC dropout, deep ensembles) RMSE ± and NLL ±, as printed in Table 1
_TABLE_1 = {
    "boston": (((3.01, 0.18), (2.97, 0.85), (3.28, 1.00)), ((2.57, 0.09), (2.46, 0.25), (2.41, 0.25))),
    "concrete": (((5.67, 0.09), (5.23, 0.53), (6.03, 0.58)), ((3.16, 0.02), (3.04, 0.09), (3.06, 0.18))),
    "energy": (((1.80, 0.05), (1.66, 0.19), (2.09, 0.29)), ((2.04, 0.02), (1.99, 0.09), (1.38, 0.22))),
    "kin8nm": (((0.10, 0.00), (0.10, 0.00), (0.09, 0.00)), ((-0.90, 0.01), (-0.95, 0.03), (-1.20, 0.02))),
    "naval": (((0.01, 0.00), (0.01, 0.00), (0.00, 0.00)), ((-3.73, 0.01), (-3.80, 0.05), (-5.63, 0.05))),
    "power": (((4.12, 0.03), (4.02, 0.18), (4.11, 0.17)), ((2.84, 0.01), (2.80, 0.05), (2.79, 0.04))),
    "protein": (((4.73, 0.01), (4.36, 0.04), (4.71, 0.06)), ((2.97, 0.00), (2.89, 0.01), (2.83, 0.02))),
    "wine": (((0.64, 0.01), (0.62, 0.04), (0.64, 0.04)), ((0.97, 0.01), (0.93, 0.06), (0.94, 0.12))),
    "yacht": (((1.02, 0.05), (1.11, 0.38), (1.58, 0.48)), ((1.63, 0.02), (1.55, 0.12), (1.18, 0.21))),
}
_TABLE_1_METHODS = ("PBP", "MC dropout (2016)", "deep ensembles")

MC_DROPOUT: tuple[Published, ...] = tuple(
    Published("MC dropout (grid search)", d, ll, ll_pm, rmse, rmse_pm, GAL_README)
    for d, rmse, rmse_pm, ll, ll_pm in _MC_DROPOUT_GRID
)
LAKSHMINARAYANAN_2017: tuple[Published, ...] = tuple(
    Published(method, d, -nll[0], nll[1], rmse[0], rmse[1], DE_TABLE)
    for d, (rmses, nlls) in _TABLE_1.items()
    for method, rmse, nll in zip(_TABLE_1_METHODS, rmses, nlls)
)
PUBLISHED: tuple[Published, ...] = MC_DROPOUT + LAKSHMINARAYANAN_2017


def published(dataset: str) -> list[Published]:
    """Every published row for ``dataset``."""
    return [row for row in PUBLISHED if row.dataset == dataset]
