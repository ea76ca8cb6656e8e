"""The computation of :mod:`vibench.tasks.lda` (declared there, with its parameters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from vibench.core import Data, Reference, Task
from vibench.structure.minibatch import Subsample
from vibench.structure.topics import Corpus, bag, pack
from vibench.tasks.lda import VERSION, LDAParams


def lda_model(topics: int, vocab: int, alpha: float, eta: float):
    """The NumPyro model of LDA with assignments summed out, on a padded corpus ``data``."""

    def model(data: Data) -> None:
        words, counts = data["words"], data["counts"]
        theta = numpyro.sample("theta", dist.Dirichlet(jnp.full(topics, alpha)).expand([words.shape[0]]).to_event(1))
        beta = numpyro.sample("beta", dist.Dirichlet(jnp.full(vocab, eta)).expand([topics]).to_event(1))
        prob = jnp.einsum("dk,kdl->dl", theta, beta[:, words])
        tiny = jnp.finfo(prob.dtype).tiny
        numpyro.factor("words", jnp.sum(jnp.where(counts > 0, counts * jnp.log(jnp.maximum(prob, tiny)), 0.0)))

    return model


def draw_tokens(rng: np.random.Generator, topics: np.ndarray, theta: np.ndarray, length: int) -> np.ndarray:
    """Tokens (D, length) of documents with proportions ``theta`` (D, K) over ``topics`` (K, V)."""
    cumulative = np.cumsum(theta, axis=1)
    u = rng.random((theta.shape[0], length)) * cumulative[:, -1:]
    z = np.minimum((u[..., None] > cumulative[:, None, :]).sum(-1), theta.shape[1] - 1)
    tokens = np.empty(z.shape, np.int32)
    for k in range(topics.shape[0]):
        mask = z == k
        tokens[mask] = rng.choice(topics.shape[1], size=int(mask.sum()), p=topics[k] / topics[k].sum())
    return tokens


def synthetic(p: LDAParams):
    """``(true topics (K, V), training tokens (D, L), test tokens (T, L))`` drawn from the model."""
    rng = np.random.default_rng(p.data_seed)
    topics = rng.dirichlet(np.full(p.vocab, p.eta), size=p.topics)
    theta = rng.dirichlet(np.full(p.topics, p.alpha), size=p.docs + p.test_docs)
    tokens = draw_tokens(rng, topics, theta, p.doc_length)
    return topics, tokens[: p.docs], tokens[p.docs :]


def lee(p: LDAParams):
    """``(vocabulary, training token-id lists, test token-id lists)`` of the Lee corpus."""
    from vibench.data.corpora import lee_documents, vocabulary

    documents = lee_documents()
    order = np.random.default_rng(p.data_seed).permutation(len(documents))
    train = [documents[i] for i in order[: p.docs]]
    test = [documents[i] for i in order[p.docs : p.docs + p.test_docs]]
    words = vocabulary(train, p.vocab)
    index = {w: i for i, w in enumerate(words)}
    ids = [[[index[w] for w in doc if w in index] for doc in part] for part in (train, test)]
    return tuple(words), ids[0], ids[1]


def halves(documents: list, vocab: int, what: str) -> Data:
    """Held-out data: each document's first half of tokens (``words``/``counts``) and the
    second half (``score_words``/``score_counts``), packed."""
    first = pack([bag(doc[: len(doc) // 2]) for doc in documents], vocab, f"{what} (first half)")
    second = pack([bag(doc[len(doc) // 2 :]) for doc in documents], vocab, f"{what} (second half)")
    return {"words": first[0], "counts": first[1], "score_words": second[0], "score_counts": second[1]}


def _device(data: Data) -> Data:
    floating = jnp.result_type(float)
    return {k: jnp.asarray(v, floating if v.dtype.kind == "f" else v.dtype) for k, v in data.items()}


def build(p: LDAParams) -> Task:
    if p.corpus == "synthetic":
        true_topics, train, test = synthetic(p)
        words, counts = train, np.ones(train.shape, np.float32)
        held_out = halves([list(doc) for doc in test], p.vocab, "test document")
        vocabulary = None
    else:
        vocabulary, train, test = lee(p)
        true_topics = None
        words, counts = pack([bag(doc) for doc in train], p.vocab, f"lee training document (vocab={p.vocab})")
        held_out = halves(test, p.vocab, f"lee test document (vocab={p.vocab})")
    lengths = jnp.asarray(counts.sum(1))
    model = lda_model(p.topics, p.vocab, p.alpha, p.eta)
    width = int(lengths.max())

    def simulate(key: jax.Array) -> tuple[dict[str, jax.Array], Data]:
        """A corpus from the prior with the data's document lengths, one slot per token."""
        key_theta, key_beta, key_z, key_w = jax.random.split(key, 4)
        theta = jax.random.dirichlet(key_theta, jnp.full(p.topics, p.alpha), (p.docs,))
        beta = jax.random.dirichlet(key_beta, jnp.full(p.vocab, p.eta), (p.topics,))
        z = jax.random.categorical(key_z, jnp.log(theta)[:, None, :], shape=(p.docs, width))
        w = jax.random.categorical(key_w, jnp.log(beta)[z]).astype(jnp.int32)
        slot_counts = (jnp.arange(width)[None, :] < lengths[:, None]).astype(lengths.dtype)
        return {"theta": theta, "beta": beta}, {"words": w, "counts": slot_counts}

    corpus = Corpus(
        docs=p.docs, vocab=p.vocab, topics=p.topics, alpha=p.alpha, eta=p.eta,
        true_topics=true_topics, vocabulary=vocabulary,
    )
    subsample = Subsample(size=p.docs, per_datum=("words", "counts"), restrict=lambda index: model, local=("theta",))
    provenance = (
        f"synthetic corpus drawn from the model (numpy seed {p.data_seed}); true topics known, posterior not"
        if p.corpus == "synthetic"
        else "Lee background corpus; no closed-form posterior"
    )
    return Task(
        name="lda",
        label="lda",
        version=VERSION,
        tags=frozenset({"local-latents", "simplex", "topic-model"}),
        model=model,
        data=_device({"words": words, "counts": counts}),
        reference=Reference(provenance=provenance),
        simulate=simulate,
        held_out=_device(held_out),
        extensions=(corpus, subsample),
    )
