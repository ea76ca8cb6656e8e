"""Latent Dirichlet allocation (Blei, Ng & Jordan 2003), its topic assignments summed out.

θ_d ~ Dirichlet(α 1_K) for each document d, β_k ~ Dirichlet(η 1_V) for each topic k;
each token of document d is word w with probability Σ_k θ_dk β_kw (the assignment z
of the token summed out). Latent sites: ``theta`` (D, K) and ``beta`` (K, V), both on
the simplex; the flat unconstrained space has D(K − 1) + K(V − 1) dimensions. The data
are a padded document-term corpus (:mod:`vibench.structure.topics`); methods that need
the assignments' conditionally conjugate form (CAVI, online VI, collapsed Gibbs) find it
in the task's :class:`vibench.structure.topics.Corpus` extension.

Corpora: ``synthetic``: K true topics drawn from Dirichlet(η 1_V) and documents of
``doc_length`` tokens drawn from the model with the data seed (topic recovery is then
measured); ``lee``: the Lee background corpus (300 news documents,
:mod:`vibench.data.corpora`; set ``VIBENCH_DATA`` to a directory holding
``lda/lee_background.cor``), its ``vocab`` most frequent content words, ``docs``
training and ``test_docs`` test documents by a seeded permutation.

Held-out evaluation is by document completion: each test document's first half of
tokens estimates its θ, the second half is scored. Ground truth: none in closed form
(the posterior of LDA is intractable); a synthetic corpus knows its true topics.

Generic gradient methods (advi, flows, svgd, nuts …) run on this collapsed model: its
log density is exact and its cost per evaluation is linear in the corpus, but the
dimension grows with D, so they suit the small synthetic corpora (the defaults); the
LDA methods (``lda_vb``, ``lda_gibbs``) scale to large corpora.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, TaskFamily
from vibench.spec import Range

VERSION = "1"

LEE_DOCUMENTS = 300


@dataclass(frozen=True)
class LDAParams:
    """topics: K; vocab: V (for lee, the V most frequent content words); docs: training
    documents; test_docs: held-out documents; doc_length: tokens per synthetic document;
    alpha, eta: symmetric Dirichlet concentrations of θ_d and β_k; corpus: synthetic or
    lee; data_seed: seed of the synthetic corpus, or of the lee train/test split."""

    topics: Annotated[int, Range(2, 1000)] = 3
    vocab: Annotated[int, Range(2, 10**5)] = 30
    docs: Annotated[int, Range(2, 10**6)] = 40
    test_docs: Annotated[int, Range(2, 10**5)] = 20
    doc_length: Annotated[int, Range(2, 10**4)] = 40
    alpha: Annotated[float, Range(0, 10**3, low_open=True)] = 0.5
    eta: Annotated[float, Range(0, 10**3, low_open=True)] = 0.1
    corpus: Literal["synthetic", "lee"] = "synthetic"
    data_seed: Annotated[int, Range(0, 2**32 - 1)] = 0

    def check(self) -> None:
        """lee has 300 documents and no doc_length; at most 10^8 tokens."""
        if self.corpus == "lee":
            if self.docs + self.test_docs > LEE_DOCUMENTS:
                raise ValueError(
                    f"parameters docs, test_docs must satisfy docs + test_docs <= {LEE_DOCUMENTS} for corpus=lee; "
                    f"got {self.docs + self.test_docs}"
                )
            if self.doc_length != LDAParams.doc_length:
                raise ValueError("parameter doc_length applies to corpus=synthetic only")
        if (self.docs + self.test_docs) * self.doc_length > 10**8:
            raise ValueError(
                "parameters docs, test_docs, doc_length must satisfy (docs + test_docs) * doc_length <= 10^8; "
                f"got {(self.docs + self.test_docs) * self.doc_length}"
            )


lda = TaskFamily(name="lda", version=VERSION, Params=LDAParams, build=Deferred("vibench.tasks._lda:build"), doc=__doc__)
