"""Topic-model metrics (tasks with a :class:`vibench.structure.topics.Corpus` extension):
held-out per-word log-likelihood and perplexity by document completion, the ELBO per
training word, and recovery of a synthetic corpus's true topics.

Every method is scored through one point estimate of the topics, the posterior mean
E[β]: exact for a :class:`vibench.families.dirichlet.DirichletProduct` (normalized
concentrations), otherwise the mean of :data:`TOPIC_DRAWS` draws of q or, for a
sampler, of its first chain's draws (chains may label the topics differently, so their
draws are not pooled). Given E[β], held-out documents are scored by
:func:`vibench.structure.topics.completion_loglik` (its module doc states the estimator
and its standard error over documents).
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING

import jax
import numpy as np

from vibench.metrics.estimates import Estimate
from vibench.metrics.importance import elbo
from vibench.structure.topics import Corpus, completion_loglik, per_word
from vibench.structure.topics import topic_recovery as recovery

if TYPE_CHECKING:
    from vibench.metrics.evaluation import Evaluation

TOPIC_DRAWS = 500
"""Draws of q (or of a sampler's first chain, evenly spaced) whose topics are averaged."""

_TOPICS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_HELD_OUT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _corpus(ev: Evaluation) -> Corpus:
    return ev.task.extension(Corpus)


def mean_topics(ev: Evaluation) -> np.ndarray:
    """E[β] (K, V) under the evaluation's approximation (see the module doc)."""
    if ev in _TOPICS:
        return _TOPICS[ev]
    corpus, approx = _corpus(ev), ev.approx
    means = getattr(approx.family, "means", None)
    if means is not None:
        topics = np.asarray(means(approx.params)[corpus.topic_site], np.float64)
    else:
        if approx.has_density:
            z = approx.sample(ev.key_q, min(TOPIC_DRAWS, ev.n_draws))
        else:
            chain = approx.family.valid_draws(approx.params)[0]
            z = chain[np.linspace(0, len(chain) - 1, min(TOPIC_DRAWS, len(chain))).astype(int)]
        data = ev.task.data
        beta = jax.vmap(lambda point: ev.logdensity.constrain(point, data)[corpus.topic_site])(jax.numpy.asarray(z))
        topics = np.asarray(beta, np.float64).mean(0)
    _TOPICS[ev] = topics
    return topics


def _held_out(ev: Evaluation) -> tuple[float, float]:
    if ev not in _HELD_OUT:
        topics = np.asarray(mean_topics(ev), np.dtype(ev.task.data[_corpus(ev).counts].dtype))
        _HELD_OUT[ev] = per_word(*completion_loglik(topics, ev.task.held_out, _corpus(ev)))
    return _HELD_OUT[ev]


def heldout_loglik(ev: Evaluation) -> Estimate:
    """Held-out log-likelihood per word by document completion, se over test documents."""
    return Estimate(*_held_out(ev))


def perplexity(ev: Evaluation) -> Estimate:
    """exp(−held-out log-likelihood per word); its se by the delta method."""
    value, se = _held_out(ev)
    return Estimate(math.exp(-value), math.exp(-value) * se)


def elbo_per_word(ev: Evaluation) -> Estimate:
    """The Monte Carlo ELBO of q on the task's collapsed model divided by the training words."""
    words = float(np.sum(np.asarray(ev.task.data[_corpus(ev).counts])))
    estimate = elbo(ev)
    return Estimate(estimate.value / words, estimate.stderr / words)


def topic_recovery(ev: Evaluation) -> Estimate:
    """Mean cosine similarity of E[β]'s topics to the true ones, optimally matched."""
    return Estimate(recovery(mean_topics(ev), _corpus(ev).true_topics), math.nan)


def applies(ev: Evaluation) -> bool:
    return ev.task.extension(Corpus) is not None and ev.task.held_out is not None


def applies_density(ev: Evaluation) -> bool:
    return applies(ev) and ev.approx.has_density


def applies_recovery(ev: Evaluation) -> bool:
    return ev.task.extension(Corpus) is not None and _corpus(ev).true_topics is not None
