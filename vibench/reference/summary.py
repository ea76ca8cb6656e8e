"""What a stored reference reports about its draws, and the bar it must pass.

Moments, their Monte Carlo standard errors (MCSE) and convergence diagnostics come
from ArviZ on draws ``(chains, n, dim)``: the rank-normalized split R-hat
(``az.rhat(method="rank")``), bulk and tail ESS (``az.ess``), and the MCSE of every
coordinate's mean and sd (``az.mcse(method="mean")`` / ``method="sd"``), as in
Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021).

The bar (:class:`Criteria`) is posteriordb's for reference posteriors (Magnusson et
al. 2024): at least 10 000 draws in all, R-hat below 1.01 for every coordinate, no
divergent transition after warm-up; plus Vehtari et al.'s advice that bulk and tail
ESS both exceed 400 (100 per chain for four chains), so every MCSE is itself reliable.
A measured NaN (e.g. constant or non-finite draws) fails its criterion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vibench.numerics.arviz import az

MOMENTS = ("mean", "std", "mean_se", "std_se")
DIAGNOSTICS = ("rhat", "ess_bulk", "ess_tail")


class CriteriaError(ValueError):
    """A reference run missed the bar; the message names each criterion and its value."""


@dataclass(frozen=True)
class Criteria:
    """min_draws: draws after warm-up over all chains; max_rhat: every coordinate's
    R-hat must be below it; max_divergences: divergent transitions allowed after
    warm-up; min_ess: every coordinate's bulk and tail ESS must reach it."""

    min_draws: int = 10_000
    max_rhat: float = 1.01
    max_divergences: int = 0
    min_ess: float = 400.0


POSTERIORDB = Criteria()
"""posteriordb's bar, with Vehtari et al.'s ESS of 400."""


@dataclass(frozen=True)
class Check:
    """One criterion: what was measured, the bound and whether it holds."""

    name: str
    measured: float
    relation: str
    bound: float
    passed: bool

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return f"{self.name} = {self.measured:.6g} (needs {self.relation} {self.bound:g}): {verdict}"


def summarize(draws: np.ndarray) -> dict[str, np.ndarray]:
    """Per coordinate of draws ``(chains, n, dim)``: mean, sd (ddof 1) and their MCSEs,
    R-hat and bulk and tail ESS."""
    if draws.ndim != 3 or draws.shape[1] < 4:
        raise ValueError(f"draws must be (chains, n >= 4, dim); got shape {draws.shape}")
    dataset = az.convert_to_dataset({"x": draws})
    flat = draws.reshape(-1, draws.shape[-1])

    def per_coordinate(values) -> np.ndarray:
        return np.asarray(values["x"].values, np.float64)

    return {
        "mean": flat.mean(axis=0),
        "std": flat.std(axis=0, ddof=1),
        "mean_se": per_coordinate(az.mcse(dataset, method="mean")),
        "std_se": per_coordinate(az.mcse(dataset, method="sd")),
        "rhat": per_coordinate(az.rhat(dataset, method="rank")),
        "ess_bulk": per_coordinate(az.ess(dataset, method="bulk")),
        "ess_tail": per_coordinate(az.ess(dataset, method="tail")),
    }


def judge(
    summary: dict[str, np.ndarray], total_draws: int, divergences: int, criteria: Criteria
) -> tuple[Check, ...]:
    """Every criterion of ``criteria`` checked against a run's summary."""
    rhat = float(np.max(summary["rhat"]))
    ess = float(min(np.min(summary["ess_bulk"]), np.min(summary["ess_tail"])))
    return (
        Check("draws", float(total_draws), ">=", criteria.min_draws, bool(total_draws >= criteria.min_draws)),
        Check("rhat_max", rhat, "<", criteria.max_rhat, bool(rhat < criteria.max_rhat)),
        Check("divergences", float(divergences), "<=", criteria.max_divergences,
              bool(divergences <= criteria.max_divergences)),
        Check("ess_min", ess, ">=", criteria.min_ess, bool(ess >= criteria.min_ess)),
    )


@dataclass(frozen=True, eq=False)
class ReferenceRun:
    """The outcome of a reference run for one task version, before it is stored.

    ``draws`` are ``(chains, n, dim)`` in the task's flat unconstrained space;
    ``provenance`` says how they were computed (JSON-ready). The checks follow from
    ``criteria``, so a run can be re-judged with :func:`dataclasses.replace`.
    """

    label: str
    version: str
    draws: np.ndarray
    divergences: int
    summary: dict[str, np.ndarray]
    provenance: dict[str, Any]
    criteria: Criteria = POSTERIORDB

    @property
    def total_draws(self) -> int:
        return int(self.draws.shape[0] * self.draws.shape[1])

    @property
    def checks(self) -> tuple[Check, ...]:
        return judge(self.summary, self.total_draws, self.divergences, self.criteria)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def failures(self) -> str:
        """The failed criteria with their measured values, on one line."""
        return "; ".join(check.describe() for check in self.checks if not check.passed)

    def criteria_json(self) -> dict[str, Any]:
        return {"criteria": asdict(self.criteria), "checks": [asdict(check) for check in self.checks]}
