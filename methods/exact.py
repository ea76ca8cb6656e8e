"""Exact: the closed-form posterior of a task whose posterior is exactly Gaussian.

With the posterior's natural parameters (precision Λ, shift h) from the task's
:class:`vibench.conjugate.ConjugateGaussian` extension, the posterior is N(Λ⁻¹h, Λ⁻¹).
The approximation is that Gaussian as a full-rank family (the Cholesky factor of the
covariance), so it has a density and draws are independent and exact. It is the
calibrated baseline of SBC (its ranks are uniform by construction) and a check of the
harness (its KL and moment errors are zero up to rounding).

Its trace is one value, the ELBO of q = posterior, which equals log p(x) exactly
(KL(q ‖ p) = 0); it is computed with the Gaussian-posterior identity
log p(x) = log p(x, μ) − log N(μ; μ, Σ), from ``data``, so it is exact for any data set.
No gradient is evaluated and no random number is drawn: ``key`` is unused.
"""

from __future__ import annotations

from dataclasses import dataclass

from vibench.declarations import Deferred, Method, gradient_free

VERSION = "1"


@dataclass(frozen=True)
class ExactConfig:
    """No settings: the posterior is computed in closed form."""


exact = Method(
    name="exact",
    version=VERSION,
    Config=ExactConfig,
    supports=Deferred("vibench.methods._exact:supports"),
    fit=Deferred("vibench.methods._exact:fit"),
    budget=gradient_free,
    doc=__doc__,
)
