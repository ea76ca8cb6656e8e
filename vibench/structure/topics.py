"""Document-term corpora: the typed task extension topic-model methods need, and the one
held-out estimator every method is scored by.

A corpus of D documents over a vocabulary of V words is stored padded: ``words`` (D, L)
int32 word ids and ``counts`` (D, L) float counts, each document's distinct words first
and zero counts past them (a slot's word then does not matter). A task whose data are
such a corpus and whose model is latent Dirichlet allocation (Blei, Ng & Jordan 2003)
declares :class:`Corpus`: its sizes, its Dirichlet hyperparameters, the sites of the
topic proportions θ (D, K) and the topics β (K, V) in its model, and, for a synthetic
corpus, the true topics.

Held-out evaluation is by document completion (Wallach, Murray, Salakhutdinov & Mimno
2009, §4; as Hoffman, Blei & Bach 2010 use it): each test document's tokens are split
in two, the first half ``words``/``counts`` and the second ``score_words``/``score_counts``
of :attr:`vibench.core.Task.held_out`. With topics β fixed, θ_d is estimated from the
first half by the variational fixed point of Blei et al. (2003) with β known,
γ_dk = α + Σ_l c_l φ_lk, φ_lk ∝ exp(ψ(γ_dk)) β_k,w_l (:data:`FOLD_IN_ITERATIONS`
sweeps from γ = α + N_d / K), θ̂_d = γ_d / Σ_k γ_dk; the second half scores
ℓ_d = Σ_l c_l log Σ_k θ̂_dk β_k,w_l. The per-word log-likelihood is the ratio
Σ_d ℓ_d / Σ_d N_d (N_d: scored words of d), its standard error the delta method's
over documents, sqrt(Σ_d (ℓ_d − r N_d)² / (D (D − 1))) / mean(N_d); the perplexity
is exp(−r).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma

from vibench.core import Array, Data

FOLD_IN_ITERATIONS = 100
"""Fixed-point sweeps that estimate a test document's θ from its first half (the change
of γ after 100 sweeps is below 1e-4 on the corpora of the tests)."""


class CorpusError(ValueError):
    """A corpus entry is invalid (empty document, word out of the vocabulary, negative
    count); the message is one line naming the document."""


@dataclass(frozen=True, eq=False)
class Corpus:
    """The task's data are a padded document-term corpus and its model is LDA.

    ``docs``, ``vocab``, ``topics``: D, V, K; ``alpha``, ``eta``: the symmetric Dirichlet
    concentrations of θ_d and β_k; ``doc_site``/``topic_site``: the model's latent sites
    of θ (D, K) and β (K, V); ``words``/``counts``: the keys of the corpus in the data
    (and of the observed halves in ``held_out``); ``true_topics``: (K, V) the topics
    that generated a synthetic corpus (None for a real one); ``vocabulary``: the words,
    for a real corpus.
    """

    docs: int
    vocab: int
    topics: int
    alpha: float
    eta: float
    doc_site: str = "theta"
    topic_site: str = "beta"
    words: str = "words"
    counts: str = "counts"
    true_topics: np.ndarray | None = None
    vocabulary: tuple[str, ...] | None = None

    def layout(self, data: Data) -> tuple[Array, Array]:
        """``(words, counts)`` of a corpus in ``data``."""
        return data[self.words], data[self.counts]


def pack(documents: Sequence[Mapping[int, float]], vocab: int, what: str = "document") -> tuple[np.ndarray, np.ndarray]:
    """Padded ``(words (D, L) int32, counts (D, L) float32)`` of documents given as
    ``{word id: count}``; L is the most distinct words of a document.

    Raises :class:`CorpusError` for an empty document (no positive count), a word id
    outside 0 … vocab − 1, or a negative or non-finite count, naming the document.
    """
    if not documents:
        raise CorpusError(f"the corpus has no {what}s")
    for d, doc in enumerate(documents):
        for word, count in doc.items():
            if not (0 <= int(word) < vocab):
                raise CorpusError(f"{what} {d}: word id {word} is out of the vocabulary (0 .. {vocab - 1})")
            if not math.isfinite(count) or count < 0:
                raise CorpusError(f"{what} {d}: word {word} has count {count}; counts are finite and >= 0")
        if sum(doc.values()) <= 0:
            raise CorpusError(f"{what} {d} is empty (no word with a positive count)")
    width = max(sum(1 for c in doc.values() if c > 0) for doc in documents)
    words = np.zeros((len(documents), width), np.int32)
    counts = np.zeros((len(documents), width), np.float32)
    for d, doc in enumerate(documents):
        kept = [(w, c) for w, c in sorted(doc.items()) if c > 0]
        words[d, : len(kept)] = [w for w, _ in kept]
        counts[d, : len(kept)] = [c for _, c in kept]
    return words, counts


def bag(tokens: Sequence[int]) -> dict[int, float]:
    """``{word id: count}`` of a token sequence."""
    counts: dict[int, float] = {}
    for token in tokens:
        counts[int(token)] = counts.get(int(token), 0.0) + 1.0
    return counts


def fold_in(topics: Array, words: Array, counts: Array, alpha: float, iterations: int = FOLD_IN_ITERATIONS) -> Array:
    """γ (D, K) of each document given the topics ``topics`` (K, V) fixed (see the module doc)."""
    beta = topics[:, words].transpose(1, 2, 0)  # (D, L, K)
    n_topics = topics.shape[0]
    gamma0 = alpha + jnp.sum(counts, -1, keepdims=True) / n_topics * jnp.ones((1, n_topics), topics.dtype)

    def sweep(_, gamma):
        weights = jnp.exp(digamma(gamma) - jnp.max(digamma(gamma), -1, keepdims=True))[:, None, :] * beta
        phi = weights / jnp.maximum(jnp.sum(weights, -1, keepdims=True), jnp.finfo(topics.dtype).tiny)
        return alpha + jnp.einsum("dl,dlk->dk", counts, phi)

    return jax.lax.fori_loop(0, iterations, sweep, gamma0)


@jax.jit
def _completion(topics, words, counts, score_words, score_counts, alpha):
    gamma = fold_in(topics, words, counts, alpha)
    theta = gamma / jnp.sum(gamma, -1, keepdims=True)
    prob = jnp.einsum("dk,kdl->dl", theta, topics[:, score_words])
    tiny = jnp.finfo(topics.dtype).tiny
    return jnp.sum(jnp.where(score_counts > 0, score_counts * jnp.log(jnp.maximum(prob, tiny)), 0.0), -1)


def completion_loglik(topics, held_out: Data, corpus: Corpus) -> tuple[np.ndarray, np.ndarray]:
    """``(ℓ_d, N_d)`` per test document: the log-likelihood of its second half given θ̂_d
    from its first half and the topics ``topics`` (K, V), and its scored word count."""
    topics = jnp.asarray(topics)
    words, counts = (jnp.asarray(held_out[k]) for k in (corpus.words, corpus.counts))
    score_words, score_counts = (jnp.asarray(held_out["score_" + k]) for k in (corpus.words, corpus.counts))
    loglik = _completion(topics, words, counts.astype(topics.dtype), score_words, score_counts.astype(topics.dtype),
                         jnp.asarray(corpus.alpha, topics.dtype))
    return np.asarray(loglik, np.float64), np.asarray(jnp.sum(score_counts, -1), np.float64)


def per_word(loglik: np.ndarray, n_words: np.ndarray) -> tuple[float, float]:
    """The ratio r = Σ ℓ_d / Σ N_d and its delta-method standard error over documents."""
    ratio = float(np.sum(loglik) / np.sum(n_words))
    d = loglik.size
    if d < 2:
        return ratio, math.nan
    se = math.sqrt(float(np.sum((loglik - ratio * n_words) ** 2)) / (d * (d - 1))) / float(np.mean(n_words))
    return ratio, se


def topic_recovery(estimated: np.ndarray, true: np.ndarray) -> float:
    """Mean cosine similarity of the estimated topics (K, V) to the true ones, matched
    one to one by the assignment that maximizes the total similarity (Hungarian method)."""
    from scipy.optimize import linear_sum_assignment

    est = np.asarray(estimated, np.float64)
    ref = np.asarray(true, np.float64)
    cosine = (est / np.linalg.norm(est, axis=1, keepdims=True)) @ (ref / np.linalg.norm(ref, axis=1, keepdims=True)).T
    rows, cols = linear_sum_assignment(-cosine)
    return float(np.mean(cosine[rows, cols]))
