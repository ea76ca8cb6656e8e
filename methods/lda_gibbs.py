"""Collapsed Gibbs sampling for latent Dirichlet allocation (Griffiths & Steyvers 2004):
the MCMC baseline of the LDA tasks.

θ and β integrated out, each token's topic is drawn in turn from
p(z_i = k | z_−i, w) ∝ (n_dk^−i + α)(n_kw^−i + η) / (n_k^−i + Vη), with n_dk, n_kw and
n_k the topic counts of document d, of word w, and in all, token i left out. After
``warmup`` sweeps, every ``thin``-th sweep gives one draw of (θ, β) from their exact
conditionals given the assignments, θ_d ~ Dir(α + n_d·) and β_k ~ Dir(η + n_k·), so the
``draws`` draws (one chain, kept in the task's flat unconstrained space) are draws of
the posterior of the task's collapsed model. One chain: the topics' labels are
arbitrary, and a chain does not switch them once settled, so averaging its draws of β
is meaningful (across chains it would not be). The trace is the collapsed log joint
log p(w, z) per sweep. On tasks with a :class:`vibench.structure.topics.Corpus`
extension whose counts are whole numbers (each count is that many tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from vibench.declarations import Deferred, Method, gradient_free
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class LDAGibbsConfig:
    """warmup: sweeps discarded; draws: draws kept; thin: sweeps per kept draw."""

    warmup: Annotated[int, Range(0, 10**6)] = 200
    draws: Annotated[int, Range(1, 10**5)] = 100
    thin: Annotated[int, Range(1, 10**4)] = 2


lda_gibbs = Method(
    name="lda_gibbs",
    version=VERSION,
    Config=LDAGibbsConfig,
    supports=Deferred("vibench.methods._lda_gibbs:supports"),
    fit=Deferred("vibench.methods._lda_gibbs:fit"),
    budget=gradient_free,
    jittable=False,
    doc=__doc__,
)
