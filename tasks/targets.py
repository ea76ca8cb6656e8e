"""Targets built to break VI: heavy tails, a funnel, separated modes, a curved ridge.

Each target is a normalized density written as a NumPyro model with no observations
(data = {}), so the posterior is the target itself, log p(x) = 0, and the whole
reference (sampler, log density, mean, sd) is exact and in closed form. Moments that
do not exist (a Student-t mean for df ≤ 1, its sd for df ≤ 2) are None, so the metrics
built on them say "not applicable".

- ``student_t``: z ~ t_ν(0, Σ), Σ = (1 − ρ) I + ρ 11ᵀ. Heavy tails: for every ν and
  every Gaussian q the ratios p/q are unbounded, with P_q(p/q > t) ≈ t⁻¹ (log t)^(−1−ν/2):
  infinite variance and Pareto k = 1 in the limit, though the slowly varying factor
  pulls a k-hat from finitely many draws below it (Yao et al. 2018; Vehtari et al.
  2024). For ν ≤ 2 the target's own variance is infinite.
- ``funnel``: Neal's funnel (Neal 2003): v ~ N(0, s²), x_i | v ~ N(0, e^v), i < dim;
  the scale of x varies by orders of magnitude with v. E[x_i] = 0,
  Var(x_i) = E[e^v] = e^{s²/2} (e^{4.5} for Neal's s = 3).
- ``mixture``: equally weighted unit-sd Gaussians whose neighbouring centers lie
  ``separation`` sds apart, on a ring in the plane of the first two coordinates (on a
  line when dim = 1). Mode-seeking KL(q ‖ p) tends to put a unimodal q on one mode; a
  :class:`vibench.modes.Modes` extension lets metrics measure mode coverage.
- ``banana``: the twisted Gaussian of Haario et al. (1999): y = φ(x) with
  x ~ N(0, diag(100, 1, ..., 1)) and φ(x)₂ = x₂ + b(x₁² − 100), other coordinates
  unchanged. φ has Jacobian 1, so p(y) = N(φ⁻¹(y); 0, diag(100, 1, ...)) is normalized;
  E[y] = 0, sd(y₁) = 10, sd(y₂) = √(1 + 2·10⁴ b²), sd(y_k) = 1 for k > 2.

References: R. M. Neal (2003), Slice sampling, Ann. Statist. 31(3); H. Haario,
E. Saksman, J. Tamminen (1999), Adaptive proposal distribution for random walk
Metropolis algorithm, Comput. Statist. 14; Y. Yao, A. Vehtari, D. Simpson, A. Gelman
(2018), Yes, but did it work?: Evaluating variational inference, ICML; A. Vehtari,
D. Simpson, A. Gelman, Y. Yao, J. Gabry (2024), Pareto smoothed importance sampling,
JMLR 25; A. K. Dhaka et al. (2021), Challenges and opportunities in high-dimensional
variational inference, NeurIPS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from vibench.declarations import Deferred, TaskFamily
from vibench.spec import Range
from vibench.tasks.gaussian import check_equicorrelation

VERSION = "1"


@dataclass(frozen=True)
class StudentTParams:
    """dim: dimension; df: degrees of freedom ν, from 1 (Cauchy) to 10; rho: correlation
    of the unit-diagonal, equicorrelated scale matrix Σ = (1 − ρ) I + ρ 11ᵀ.
    Default ν = 2: the mean exists, the variance does not."""

    dim: Annotated[int, Range(1, 1000)] = 5
    df: Annotated[float, Range(1, 10)] = 2.0
    rho: Annotated[float, Range(-1, 1, low_open=True, high_open=True)] = 0.5

    def check(self) -> None:
        check_equicorrelation(self.dim, self.rho)


@dataclass(frozen=True)
class FunnelParams:
    """dim: dimension (v and dim − 1 x's); v_scale: sd s of v (Neal 2003: 3), at most 10
    so that draws and moments (sd of x: e^{s²/4}) stay well inside float32."""

    dim: Annotated[int, Range(2, 1000)] = 10
    v_scale: Annotated[float, Range(0, 10, low_open=True)] = 3.0


@dataclass(frozen=True)
class MixtureParams:
    """n_modes: equally weighted unit-sd Gaussian components (at least 2); separation:
    distance between neighbouring centers in component sds (10: no overlap to speak
    of; below about 4 neighbouring modes merge); dim: dimension."""

    n_modes: Annotated[int, Range(2, 1000)] = 4
    separation: Annotated[float, Range(0, 1000, low_open=True)] = 10.0
    dim: Annotated[int, Range(1, 1000)] = 2


@dataclass(frozen=True)
class BananaParams:
    """dim: dimension (at least 2); twist: b, the curvature (Haario et al. 1999: 0.03
    "moderately", 0.1 "strongly" twisted); default the strong twist."""

    dim: Annotated[int, Range(2, 1000)] = 2
    twist: Annotated[float, Range(0, 10)] = 0.1


student_t = TaskFamily(
    name="student_t",
    version=VERSION,
    Params=StudentTParams,
    build=Deferred("vibench.tasks._targets:build_student_t"),
    doc="Multivariate Student-t with an equicorrelated scale: heavy tails (exact).",
)


funnel = TaskFamily(
    name="funnel",
    version=VERSION,
    Params=FunnelParams,
    build=Deferred("vibench.tasks._targets:build_funnel"),
    doc="Neal's funnel: v ~ N(0, s^2) (s = 3), x_i | v ~ N(0, e^v) (exact).",
)


mixture = TaskFamily(
    name="mixture",
    version=VERSION,
    Params=MixtureParams,
    build=Deferred("vibench.tasks._targets:build_mixture"),
    doc="Well-separated, equally weighted Gaussian modes on a ring (exact, with Modes).",
)


banana = TaskFamily(
    name="banana",
    version=VERSION,
    Params=BananaParams,
    build=Deferred("vibench.tasks._targets:build_banana"),
    doc="Haario et al.'s twisted Gaussian: a curved, volume-preserving banana (exact).",
)
