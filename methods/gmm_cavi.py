"""CAVI for conjugate Gaussian mixtures: Bishop's (2006, §10.2) variational Bayes with
explicit responsibilities.

On a task with the :class:`vibench.structure.mixture.ConjugateMixture` extension, the
mean-field family q(z) q(w) Π_k q(μ_k, Λ_k) over the assignments z and the parameters
has closed-form coordinate updates: responsibilities r_nk ∝ exp(E ln w_k + ½ E ln|Λ_k|
− ½ E[(x_n − μ_k)ᵀΛ_k(x_n − μ_k)]) (10.46–10.67), then q(w) = Dirichlet(α₀ + N_k) and
q(μ_k, Λ_k) = Normal–Wishart(m_k, β_k, W_k, ν_k) from the responsibilities' weighted
counts, means and scatter (10.58–10.63). The initial responsibilities are uniform
random numbers normalized per point (scikit-learn's ``init_params="random"``). Each
iteration updates r, then the parameters, and records the exact ELBO (10.70–10.77),
which never decreases; it stops when an iteration gains less than ``tol`` nats per
data point, or after ``max_iters``.

The approximation over the parameters is that Dirichlet × Normal–Wishart, folded onto
the task's ordered components (draws sorted, the density summed over the K!
relabellings), in the task's flat unconstrained space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from vibench.declarations import Deferred, Method, gradient_free
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class GMMCAVIConfig:
    """max_iters: most iterations (responsibilities, then parameters); tol: stop when an
    iteration raises the ELBO by less than tol nats per data point."""

    max_iters: Annotated[int, Range(1, 10**6)] = 1000
    tol: Annotated[float, Range(0, 1)] = 1e-6


gmm_cavi = Method(
    name="gmm_cavi",
    version=VERSION,
    Config=GMMCAVIConfig,
    supports=Deferred("vibench.methods._gmm_cavi:supports"),
    fit=Deferred("vibench.methods._gmm_cavi:fit"),
    budget=gradient_free,
    doc=__doc__,
)
