"""Exact posterior of a tiny Gaussian mixture, by enumerating every assignment.

On a task with the :class:`vibench.structure.mixture.ConjugateMixture` extension and
K^n ≤ 3^12 assignments, the posterior of the mixture's parameters is exact: given an
assignment z the model is conjugate (a Dirichlet–multinomial times Normal–Wishart
marginal likelihoods), so p(z | x) ∝ p(x, z) is enumerated over all K^n assignments,
and a draw is an assignment by its posterior probability, then w, Λ_k, μ_k from their
conjugate posterior given it, components ordered as the task orders them. It computes
the enumeration from ``data`` (any data set of the task's shape, as SBC needs), in the
run's precision, in one compiled call. The approximation is ``draws`` independent
exact draws (no density); the trace is one value, log p(x) = log Σ_z p(x, z). It is the
calibrated baseline of SBC on mixtures (its ranks are uniform by construction). Memory
grows as K^n · n · K: keep n small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from vibench.declarations import Deferred, Method, gradient_free
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class GMMExactConfig:
    """draws: independent exact posterior draws the approximation holds."""

    draws: Annotated[int, Range(1, 10**6)] = 4000


gmm_exact = Method(
    name="gmm_exact",
    version=VERSION,
    Config=GMMExactConfig,
    supports=Deferred("vibench.methods._gmm_exact:supports"),
    fit=Deferred("vibench.methods._gmm_exact:fit"),
    budget=gradient_free,
    doc=__doc__,
)
