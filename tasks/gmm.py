"""Bayesian Gaussian mixture (Bishop 2006, §10.2), its assignments summed out.

w ~ Dirichlet(α₀ 1_K); for each component Λ_k ~ Wishart(W₀, ν₀) and
μ_k | Λ_k ~ N(m₀, (β₀Λ_k)⁻¹), with m₀ = 0 and W₀ = I / (ν₀ scale²) (so E[Λ_k] = I /
scale²); x_n | w, μ, Λ ~ Σ_k w_k N(μ_k, Λ_k⁻¹). The gradient model samples μ_k from its
marginal Student-t and Λ_k | μ_k from its conditional Wishart (the same joint) and
orders the components by the first coordinate of their means, which identifies the
labels without changing the evidence or the predictive
(:mod:`vibench.structure.mixture`). Latent sites: ``w`` (simplex), ``mu`` (K, d),
``prec_chol`` (K, d, d), the Cholesky factor of Λ_k.

Data: ``simulated``: K equal-weight components with unit covariance, their means on a
circle in the first two coordinates (on a line when d = 1) with neighbours
``separation`` apart, n points drawn with the data seed; ``iris``: Fisher's iris
measurements (150 flowers, 4 features, from scikit-learn's bundled copy of the UCI
file; needs scikit-learn), each feature standardized, the first d features, a seeded
subset of n rows when n < 150. Held-out points (``n_test``) come from the same source.

Ground truth: when K^n ≤ 3^12 the exact log evidence and posterior predictive by
enumerating every assignment (given them the model is conjugate: a Dirichlet–multinomial
times Normal–Wishart marginal likelihoods), and exact posterior draws (an assignment by
its posterior probability, then the conjugate posterior), whose moments (with Monte
Carlo errors) are the reference moments. Larger data has no closed form: a stored NUTS
reference serves (``vibench reference --task "gmm[n=200]"``, then ``load_reference``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, TaskFamily
from vibench.spec import Range

VERSION = "1"

IRIS_ROWS, IRIS_FEATURES = 150, 4


@dataclass(frozen=True)
class GMMParams:
    """k: components; d: dimension of a point; n: training points; separation: distance
    between neighbouring true means, in component sds (simulated data only); data_seed:
    seed of the data and the test points; data: simulated or iris; n_test: held-out
    points; alpha0: Dirichlet concentration of the weights; beta0: prior precision of a
    mean, relative to its component's; dof_extra: the Wishart's degrees of freedom minus
    d (nu0 = d + dof_extra, must exceed d - 1); scale: prior guess of a component's sd."""

    k: Annotated[int, Range(1, 6)] = 2
    d: Annotated[int, Range(1, 50)] = 2
    n: Annotated[int, Range(1, 10**5)] = 12
    separation: Annotated[float, Range(0, 10**3)] = 4.0
    data_seed: Annotated[int, Range(0, 2**32 - 1)] = 0
    data: Literal["simulated", "iris"] = "simulated"
    n_test: Annotated[int, Range(1, 10**5)] = 100
    alpha0: Annotated[float, Range(0, 10**6, low_open=True)] = 1.0
    beta0: Annotated[float, Range(0, 10**6, low_open=True)] = 0.1
    dof_extra: Annotated[float, Range(-1, 10**6, low_open=True)] = 1.0
    scale: Annotated[float, Range(0, 10**6, low_open=True)] = 1.0

    def check(self) -> None:
        """Iris has 150 rows (training and test together) and 4 features, and no separation."""
        if self.data == "iris":
            if self.d > IRIS_FEATURES:
                raise ValueError(f"parameter d must be at most {IRIS_FEATURES} for data=iris; got {self.d}")
            if self.n + self.n_test > IRIS_ROWS:
                raise ValueError(
                    f"parameters n, n_test must satisfy n + n_test <= {IRIS_ROWS} for data=iris; "
                    f"got {self.n + self.n_test}"
                )
            if self.separation != GMMParams.separation:
                raise ValueError("parameter separation applies to data=simulated only")
        if (self.n + self.n_test) * self.d > 10**8:
            raise ValueError(
                f"parameters n, n_test, d must satisfy (n + n_test) * d <= 10^8; got {(self.n + self.n_test) * self.d}"
            )


gmm = TaskFamily(name="gmm", version=VERSION, Params=GMMParams, build=Deferred("vibench.tasks._gmm:build"), doc=__doc__)
