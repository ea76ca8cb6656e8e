"""The computation of :mod:`vibench.methods.lda_gibbs` (declared there, with its parameters).

The corpus is expanded to tokens (document, word) on the host, then a compiled sweep
visits the tokens in order with ``lax.fori_loop``: the collapsed sampler is sequential
by nature (each draw moves the counts the next one reads), O(N·K) per sweep.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.dirichlet import DirichletProduct
from vibench.families.draws import Draws
from vibench.methods.lda_gibbs import LDAGibbsConfig
from vibench.structure.topics import Corpus


def tokens(words: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(document, word)`` of every token, each slot repeated by its count."""
    if not np.all(counts == np.round(counts)):
        raise ValueError("lda_gibbs needs whole-number word counts (each count is that many tokens)")
    repeats = counts.astype(np.int64).reshape(-1)
    doc = np.repeat(np.repeat(np.arange(words.shape[0]), words.shape[1]), repeats)
    return doc.astype(np.int32), np.repeat(words.reshape(-1), repeats).astype(np.int32)


def collapsed_log_joint(ndk, nkw, alpha, eta):
    """log p(w, z) with θ and β integrated out, from the topic counts."""
    k, v = nkw.shape

    def part(n, prior, size):
        return jnp.sum(gammaln(size * prior) - gammaln(size * prior + jnp.sum(n, -1))
                       + jnp.sum(gammaln(prior + n), -1) - size * gammaln(prior))

    return part(ndk, alpha, k) + part(nkw, eta, v)


def sweep(state, key, doc, word, alpha, eta):
    """One pass of the collapsed sampler over every token, in order."""
    z, ndk, nkw, nk = state
    vocab = nkw.shape[1]
    u = jax.random.uniform(key, z.shape, ndk.dtype)

    def visit(i, carry):
        z, ndk, nkw, nk = carry
        d, w, old = doc[i], word[i], z[i]
        ndk, nkw, nk = ndk.at[d, old].add(-1), nkw.at[old, w].add(-1), nk.at[old].add(-1)
        weight = (ndk[d] + alpha) * (nkw[:, w] + eta) / (nk + vocab * eta)
        cdf = jnp.cumsum(weight)
        new = jnp.minimum(jnp.sum(cdf < u[i] * cdf[-1]), weight.shape[0] - 1)
        ndk, nkw, nk = ndk.at[d, new].add(1), nkw.at[new, w].add(1), nk.at[new].add(1)
        return z.at[i].set(new), ndk, nkw, nk

    return jax.lax.fori_loop(0, z.shape[0], visit, (z, ndk, nkw, nk))


@partial(jax.jit, static_argnames=("docs", "topics", "vocab", "doc_site", "topic_site", "warmup", "draws", "thin"))
def run(key, doc, word, alpha, eta, *, docs, topics, vocab, doc_site, topic_site, warmup, draws, thin):
    key_z, key_warm, key_draw = jax.random.split(key, 3)
    z = jax.random.randint(key_z, doc.shape, 0, topics)
    dtype = jnp.result_type(float)
    ndk = jnp.zeros((docs, topics), dtype).at[doc, z].add(1)
    nkw = jnp.zeros((topics, vocab), dtype).at[z, word].add(1)
    state = (z, ndk, nkw, jnp.sum(nkw, -1))

    def warm(state, key):
        state = sweep(state, key, doc, word, alpha, eta)
        return state, collapsed_log_joint(state[1], state[2], alpha, eta)

    state, warm_trace = jax.lax.scan(warm, state, jax.random.split(key_warm, warmup))

    def keep(state, key):
        key_sweeps, key_params = jax.random.split(key)
        state, trace = jax.lax.scan(warm, state, jax.random.split(key_sweeps, thin))
        _, ndk, nkw, _ = state
        params = {doc_site: alpha + ndk, topic_site: eta + nkw}
        return state, (DirichletProduct().sample(params, key_params, 1)[0], trace)

    state, (flat, kept_trace) = jax.lax.scan(keep, state, jax.random.split(key_draw, draws))
    return flat, jnp.concatenate([warm_trace, kept_trace.reshape(-1)])


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: LDAGibbsConfig) -> Approximation:
    corpus = task.extension(Corpus)
    words, counts = (np.asarray(a) for a in corpus.layout(data))
    doc, word = tokens(words, counts)
    flat, trace = run(
        key, jnp.asarray(doc), jnp.asarray(word), corpus.alpha, corpus.eta,
        docs=words.shape[0], topics=corpus.topics, vocab=corpus.vocab, doc_site=corpus.doc_site,
        topic_site=corpus.topic_site, warmup=config.warmup, draws=config.draws, thin=config.thin,
    )
    sweeps = config.warmup + config.draws * config.thin
    return Approximation(
        params={"draws": flat[None]},
        trace=trace,
        grad_evals=jnp.asarray(0),
        family=Draws(kind="mcmc"),
        objective="log_joint",
        steps=jnp.asarray(sweeps),
    )


def supports(task: Task) -> tuple[bool, str]:
    if task.extension(Corpus) is None:
        return False, "needs a document-term corpus with an LDA model (a Corpus task extension)"
    return True, ""
