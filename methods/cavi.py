"""CAVI: closed-form coordinate ascent for tasks with an exactly Gaussian posterior.

With the posterior's natural parameters (precision Λ, shift h) from the task's
:class:`vibench.conjugate.ConjugateGaussian` extension, the optimal factor of
coordinate i given the others is q_i = N((h_i − Σ_{j≠i} Λ_ij m_j) / Λ_ii, 1/Λ_ii)
(Bishop 2006, §10.1.2). Each sweep updates every coordinate in turn (Gauss–Seidel
on the means; the variances are exact after the first update), until no mean moves
by more than ``tol`` posterior-conditional standard deviations, or ``max_sweeps``.
The ELBO is exact (the log joint is quadratic), so the trace is the true objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from vibench.declarations import Deferred, Method, gradient_free
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class CAVIConfig:
    """max_sweeps: most full passes over the coordinates; tol: stop when the largest
    change of a mean in a sweep is below tol × its factor's standard deviation."""

    max_sweeps: Annotated[int, Range(1, 10**7)] = 1000
    tol: Annotated[float, Range(0, 1)] = 1e-5


cavi = Method(
    name="cavi",
    version=VERSION,
    Config=CAVIConfig,
    supports=Deferred("vibench.methods._cavi:supports"),
    fit=Deferred("vibench.methods._cavi:fit"),
    budget=gradient_free,
    doc=__doc__,
)
