"""Mean-field variational Bayes for latent Dirichlet allocation (Blei, Ng & Jordan 2003):
batch coordinate ascent (CAVI) and online stochastic VI (Hoffman, Blei & Bach 2010).

q(θ, β, z) = Π_d Dir(θ_d; γ_d) Π_k Dir(β_k; λ_k) Π_{d,n} Cat(z_dn; φ_dn), on tasks with a
:class:`vibench.structure.topics.Corpus` extension. The local step, with λ fixed,
alternates φ_dnk ∝ exp(E[log θ_dk] + E[log β_k,w_dn]) and γ_dk = α + Σ_n φ_dnk
``local_iters`` times (batch: warm-started from the previous iteration's γ; online:
from γ = α + N_d / K). ``mode=batch`` then sets λ_kw = η + Σ_{d,n} φ_dnk [w_dn = w]
and repeats until the bound's relative change is below ``tol`` or ``max_iters``.
Every update maximizes the ELBO in its own block, so the bound with φ maximized out,
L(γ, λ) = Σ_{d,n} log Σ_k exp(E[log θ_dk] + E[log β_k,w_dn]) + E[log p(θ)/q(θ)] +
E[log p(β)/q(β)], the trace, never decreases. ``mode=online`` draws ``batch_size``
documents per step, computes λ̂ = η + (D/S) Σ_{d∈S,n} φ_dnk [w_dn = w] and sets
λ ← (1 − ρ_t) λ + ρ_t λ̂ with ρ_t = (τ₀ + t)^(−κ), t = 1 … ``max_iters`` (κ ∈ (0.5, 1]
makes Σρ = ∞, Σρ² < ∞); its trace is the minibatch estimate of L, and at the end one
local step over every document (from its γ = α + N_d / K, ``final_iters`` sweeps) gives
the γ of q.

The approximation is q(θ, β) = Π Dir(γ_d) Π Dir(λ_k)
(:class:`vibench.families.dirichlet.DirichletProduct`) on the task's collapsed model; its
ELBO there is at least L (summing z out is Jensen's inequality in the other order).
λ starts at Gamma(100, 1/100) draws (as Hoffman's and scikit-learn's code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, Method, gradient_free
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class LDAVBConfig:
    """mode: batch (CAVI) or online (stochastic VI); max_iters: batch iterations or online
    steps; tol: batch stops when the bound's relative change is below it; local_iters:
    (φ, γ) sweeps per iteration or step; batch_size, kappa, tau0: online minibatch size
    and step sizes ρ_t = (tau0 + t)^-kappa; final_iters: the online run's closing sweeps."""

    mode: Literal["batch", "online"] = "batch"
    max_iters: Annotated[int, Range(1, 10**6)] = 200
    tol: Annotated[float, Range(0, 1)] = 1e-6
    local_iters: Annotated[int, Range(1, 10**4)] = 10
    batch_size: Annotated[int, Range(1, 10**6)] = 16
    kappa: Annotated[float, Range(0.5, 1, low_open=True)] = 0.7
    tau0: Annotated[float, Range(0, 10**6)] = 1.0
    final_iters: Annotated[int, Range(1, 10**4)] = 100


lda_vb = Method(
    name="lda_vb",
    version=VERSION,
    Config=LDAVBConfig,
    supports=Deferred("vibench.methods._lda_vb:supports"),
    fit=Deferred("vibench.methods._lda_vb:fit"),
    budget=gradient_free,
    doc=__doc__,
)
