"""The computation of :mod:`vibench.methods.lda_vb` (declared there, with its parameters).

Words are gathered per document slot: with the corpus padded to (D, L), E[log β] at the
slots is (D, L, K) and a local sweep costs O(D·L·K); λ's statistics are a segment sum of
the slots' φ over word ids. Padding slots have count 0 and add nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.dirichlet import DirichletProduct
from vibench.methods.lda_vb import LDAVBConfig
from vibench.structure.topics import Corpus


def expected_log(concentration: jax.Array) -> jax.Array:
    """E[log x] under Dirichlet(concentration) per row: ψ(c) − ψ(Σ c)."""
    return digamma(concentration) - digamma(jnp.sum(concentration, -1, keepdims=True))


def dirichlet_terms(concentration: jax.Array, prior: float) -> jax.Array:
    """Σ_rows E_q[log Dir(x; prior) − log Dir(x; concentration)] for q = Dir(concentration)."""
    n = concentration.shape[-1]
    elog = expected_log(concentration)
    prior_norm = gammaln(n * prior) - n * gammaln(prior)
    q_norm = gammaln(jnp.sum(concentration, -1)) - jnp.sum(gammaln(concentration), -1)
    return jnp.sum(prior_norm - q_norm + jnp.sum((prior - concentration) * elog, -1))


def word_term(gamma, slot_elog_beta, counts) -> jax.Array:
    """Σ_{d,l} c_dl log Σ_k exp(E[log θ_dk] + E[log β_k,w_dl]): the assignments' part of the
    bound with φ at its optimum."""
    logits = expected_log(gamma)[:, None, :] + slot_elog_beta
    return jnp.sum(counts * jax.nn.logsumexp(logits, -1))


def slots(elog_beta: jax.Array, words: jax.Array) -> jax.Array:
    """E[log β] at each slot's word: (D, L, K)."""
    return jnp.moveaxis(elog_beta[:, words], 0, -1)


def local_step(gamma, slot_elog_beta, counts, alpha, iters):
    """``iters`` sweeps of φ then γ; returns the last γ and the φ it was computed from."""

    def sweep(carry, _):
        gamma, _ = carry
        phi = jax.nn.softmax(expected_log(gamma)[:, None, :] + slot_elog_beta, -1)
        return (alpha + jnp.einsum("dl,dlk->dk", counts, phi), phi), None

    phi0 = jnp.zeros(slot_elog_beta.shape, gamma.dtype)
    (gamma, phi), _ = jax.lax.scan(sweep, (gamma, phi0), None, length=iters)
    return gamma, phi


def topic_statistics(phi, words, counts, vocab: int) -> jax.Array:
    """Σ_{d,l} c_dl φ_dlk [w_dl = w] as (K, V)."""
    weighted = (counts[..., None] * phi).reshape(-1, phi.shape[-1])
    return jax.ops.segment_sum(weighted, words.reshape(-1), num_segments=vocab).T


def start_gamma(counts, alpha, topics):
    return alpha + jnp.sum(counts, -1, keepdims=True) / topics * jnp.ones((1, topics), counts.dtype)


def bound(gamma, lam, words, counts, alpha, eta, scale=1.0):
    """L(γ, λ) (see :mod:`vibench.methods.lda_vb`); ``scale`` multiplies the documents' terms."""
    local = word_term(gamma, slots(expected_log(lam), words), counts) + dirichlet_terms(gamma, alpha)
    return scale * local + dirichlet_terms(lam, eta)


def fit_batch(corpus: Corpus, words, counts, lam0, config: LDAVBConfig):
    alpha, eta = corpus.alpha, corpus.eta
    gamma0 = start_gamma(counts, alpha, corpus.topics)

    def not_done(state):
        it, _, _, change, _ = state
        return (it < config.max_iters) & (change > config.tol)

    def body(state):
        it, gamma, lam, _, trace = state
        gamma, phi = local_step(gamma, slots(expected_log(lam), words), counts, alpha, config.local_iters)
        lam = eta + topic_statistics(phi, words, counts, corpus.vocab)
        value = bound(gamma, lam, words, counts, alpha, eta)
        previous = jnp.where(it > 0, trace[jnp.maximum(it - 1, 0)], -jnp.inf)
        change = jnp.where(it > 0, jnp.abs(value - previous) / jnp.abs(value), jnp.inf)
        return it + 1, gamma, lam, change, trace.at[it].set(value)

    trace0 = jnp.full((config.max_iters,), jnp.nan, lam0.dtype)
    state = (jnp.asarray(0), gamma0, lam0, jnp.asarray(jnp.inf, lam0.dtype), trace0)
    its, gamma, lam, change, trace = jax.lax.while_loop(not_done, body, state)
    return gamma, lam, trace, its, change <= config.tol


def fit_online(corpus: Corpus, words, counts, lam0, key, config: LDAVBConfig):
    alpha, eta = corpus.alpha, corpus.eta
    docs = words.shape[0]
    size = min(config.batch_size, docs)
    scale = docs / size

    def step(lam, inputs):
        t, key = inputs
        index = jax.random.choice(key, docs, (size,), replace=False)
        w, c = words[index], counts[index]
        gamma, phi = local_step(start_gamma(c, alpha, corpus.topics), slots(expected_log(lam), w), c, alpha,
                                config.local_iters)
        lam_hat = eta + scale * topic_statistics(phi, w, c, corpus.vocab)
        rho = (config.tau0 + t) ** (-config.kappa)
        lam = (1 - rho) * lam + rho * lam_hat
        return lam, bound(gamma, lam, w, c, alpha, eta, scale)

    steps = jnp.arange(1, config.max_iters + 1, dtype=lam0.dtype)
    lam, trace = jax.lax.scan(step, lam0, (steps, jax.random.split(key, config.max_iters)))
    gamma, _ = local_step(start_gamma(counts, alpha, corpus.topics), slots(expected_log(lam), words), counts, alpha,
                          config.final_iters)
    return gamma, lam, trace, jnp.asarray(config.max_iters), jnp.asarray(False)


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: LDAVBConfig) -> Approximation:
    corpus = task.extension(Corpus)
    words, counts = corpus.layout(data)
    key_init, key_steps = jax.random.split(key)
    lam0 = jax.random.gamma(key_init, 100.0, (corpus.topics, corpus.vocab), counts.dtype) / 100.0
    if config.mode == "batch":
        gamma, lam, trace, steps, converged = fit_batch(corpus, words, counts, lam0, config)
    else:
        gamma, lam, trace, steps, converged = fit_online(corpus, words, counts, lam0, key_steps, config)
    return Approximation(
        params={corpus.doc_site: gamma, corpus.topic_site: lam},
        trace=trace,
        grad_evals=jnp.asarray(0),
        family=DirichletProduct(),
        steps=steps,
        converged=converged,
    )


def supports(task: Task) -> tuple[bool, str]:
    if task.extension(Corpus) is None:
        return False, "needs a document-term corpus with an LDA model (a Corpus task extension)"
    return True, ""
