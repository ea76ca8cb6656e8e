"""The lda task family, its LDA methods (lda_vb batch and online, lda_gibbs), the topic
metrics and the corpus loader; parity with scikit-learn and gensim."""

from __future__ import annotations

import math
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
from conftest import SHARED_DATA
from numpyro.distributions.transforms import StickBreakingTransform

from vibench.cli import main
from vibench.data.corpora import LEE_FILE, lee_documents, lee_path
from vibench.data.files import DataFileError
from vibench.families.dirichlet import DirichletProduct
from vibench.logdensity import derive_logdensity
from vibench.structure.topics import (
    Corpus,
    CorpusError,
    bag,
    completion_loglik,
    pack,
    per_word,
    topic_recovery,
)

SPEC = "lda[docs=100,vocab=30,topics=3,doc_length=40,test_docs=40]"


@pytest.fixture(scope="module")
def task(registry):
    return registry.task(SPEC)


@pytest.fixture(scope="module")
def logdensity(task):
    return derive_logdensity(task)


def fit(registry, task, logdensity, spec, seed=0):
    choice = registry.method(spec)
    return jax.jit(lambda d, k: choice.method.fit(task, logdensity, d, k, choice.config))(task.data, jax.random.key(seed))


def heldout(task, topics):
    return completion_loglik(jnp.asarray(topics, jnp.float32), task.held_out, task.extension(Corpus))


# --------------------------------------------------------------------- corpus and data
@pytest.mark.parametrize(
    "documents, message",
    [
        ([{0: 1.0}, {}], "document 1 is empty"),
        ([{0: 1.0}, {1: 0.0}], "document 1 is empty"),
        ([{0: 1.0, 7: 2.0}], "document 0: word id 7 is out of the vocabulary (0 .. 4)"),
        ([{0: 1.0}, {2: -1.0}], "document 1: word 2 has count -1.0"),
    ],
)
def test_bad_corpus_is_one_line_naming_the_document(documents, message):
    with pytest.raises(CorpusError) as err:
        pack(documents, 5)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_pack_pads_distinct_words():
    words, counts = pack([{3: 2.0, 1: 1.0}, {4: 5.0}], 5)
    assert words.tolist() == [[1, 3], [4, 0]] and counts.tolist() == [[1.0, 2.0], [5.0, 0.0]]


def test_lee_missing_or_altered_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("VIBENCH_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(DataFileError) as err:
        lee_path(tmp_path)
    assert f"lda/{LEE_FILE} not found in {tmp_path}" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "lda").mkdir()
    (tmp_path / "lda" / LEE_FILE).write_text("not the corpus\n")
    with pytest.raises(DataFileError, match="is altered"):
        lee_path(tmp_path)


@pytest.mark.skipif(not (shutil.os.path.isfile(f"{SHARED_DATA}/lda/{LEE_FILE}")), reason="no local Lee corpus")
def test_lee_task_builds_from_the_data_directory(registry, monkeypatch):
    monkeypatch.setenv("VIBENCH_DATA", SHARED_DATA)
    assert len(lee_documents()) == 300
    task = registry.task("lda[corpus=lee,vocab=200,docs=250,test_docs=50,topics=5]")
    corpus = task.extension(Corpus)
    assert task.data["words"].shape[0] == 250 and len(corpus.vocabulary) == 200 and corpus.true_topics is None
    assert float(task.held_out["score_counts"].sum(1).min()) >= 1


# --------------------------------------------------------------------- model and family
def test_model_is_the_collapsed_lda_likelihood(task, logdensity):
    z = logdensity.init(jax.random.key(3))
    sites = logdensity.constrain(z, task.data)
    theta, beta = np.asarray(sites["theta"], np.float64), np.asarray(sites["beta"], np.float64)
    words, counts = np.asarray(task.data["words"]), np.asarray(task.data["counts"])
    loglik = sum(counts[d] @ np.log(theta[d] @ beta[:, words[d]]) for d in range(words.shape[0]))
    prior = dist.Dirichlet(jnp.full(3, 0.5)).log_prob(sites["theta"]).sum() + dist.Dirichlet(
        jnp.full(30, 0.1)).log_prob(sites["beta"]).sum()
    unflat = logdensity.unflatten(z)
    jacobian = sum(StickBreakingTransform().log_abs_det_jacobian(unflat[s], sites[s]).sum() for s in ("theta", "beta"))
    expected = loglik + float(prior) + float(jacobian)
    assert float(logdensity.logp(z, task.data)) == pytest.approx(expected, rel=1e-5)


def test_dirichlet_family_density_and_mean():
    params = {"theta": jnp.array([[0.3, 2.0, 5.0], [1.0, 1.0, 1.0]]), "beta": jnp.array([[0.1, 0.5, 3.0, 1.0]])}
    family = DirichletProduct()
    z, log_q = family.sample_and_log_prob(params, jax.random.key(0), 20000)
    # log q is numpyro's Dirichlet density times the stick-breaking Jacobian, at the same point
    beta_u, theta_u = z[:5, :3].reshape(5, 1, 3), z[:5, 3:].reshape(5, 2, 2)
    expected = 0.0
    for u, conc in ((beta_u, params["beta"]), (theta_u, params["theta"])):
        x = StickBreakingTransform()(u)
        expected = expected + (dist.Dirichlet(conc).log_prob(x) + StickBreakingTransform().log_abs_det_jacobian(u, x)).sum(-1)
    np.testing.assert_allclose(log_q[:5], expected, rtol=1e-4)
    np.testing.assert_allclose(jax.vmap(lambda p: family.log_prob(params, p))(z[:5]), log_q[:5], rtol=1e-5)
    # draws' mean of x is the Dirichlet mean, within 5 standard errors (sd ≤ 0.5 / √20000)
    theta = StickBreakingTransform()(z[:, 3:].reshape(-1, 2, 2))
    mean = family.means(params)["theta"]
    sd = np.sqrt(mean * (1 - mean) / (params["theta"].sum(-1, keepdims=True) + 1))
    assert np.all(np.abs(theta.mean(0) - mean) < 5 * sd / math.sqrt(20000))


# --------------------------------------------------------------------- methods
def test_cavi_elbo_is_monotone_and_recovers_topics(registry, task, logdensity):
    approx = fit(registry, task, logdensity, "lda_vb")
    trace = np.asarray(approx.ran_trace(), np.float64)
    assert approx.n_steps > 5 and np.all(np.isfinite(trace))
    # each update maximizes the bound in its block: it never decreases, up to float32
    # rounding of a sum of ~4000 terms (relative 1e-6 of the bound)
    assert np.all(np.diff(trace) >= -1e-6 * np.abs(trace[1:]))
    truth = task.extension(Corpus).true_topics
    assert topic_recovery(approx.family.means(approx.params)["beta"], truth) > 0.95


def test_online_vi_reaches_the_cavi_optimum(registry, task, logdensity):
    batch = fit(registry, task, logdensity, "lda_vb")
    online = fit(registry, task, logdensity, "lda_vb[mode=online,max_iters=400,batch_size=20]")
    base = heldout(task, batch.family.means(batch.params)["beta"])
    other = heldout(task, online.family.means(online.params)["beta"])
    assert_agree(base, other)


def test_gibbs_recovers_synthetic_topics(registry, task, logdensity):
    """With ~1300 tokens per topic, the sampling error of a topic's word frequencies
    gives 1 − cos ≈ Σ_w β_w(1−β_w) / (2 N_k ‖β‖²) ≈ 0.005 for these Dirichlet(0.1)
    topics, and two merged topics give cos ≲ 0.8: 0.95 separates recovery from failure."""
    choice = registry.method("lda_gibbs[warmup=150,draws=50]")
    approx = choice.method.fit(task, logdensity, task.data, jax.random.key(0), choice.config)
    draws = approx.params["draws"][0]
    beta = jax.vmap(lambda z: logdensity.constrain(z, task.data)["beta"])(draws).mean(0)
    assert topic_recovery(beta, task.extension(Corpus).true_topics) > 0.95
    assert np.all(np.isfinite(approx.trace))


# --------------------------------------------------------------------- evaluation
def test_per_word_ratio_and_its_standard_error():
    loglik, n = np.array([-10.0, -30.0, -20.0]), np.array([5.0, 10.0, 10.0])
    ratio, se = per_word(loglik, n)
    assert ratio == pytest.approx(-60 / 25)
    residual = loglik - ratio * n
    assert se == pytest.approx(math.sqrt(np.sum(residual**2) / 6) / np.mean(n))


def test_true_topics_score_better_than_uniform_ones(task):
    corpus = task.extension(Corpus)
    true = per_word(*heldout(task, corpus.true_topics))
    uniform = per_word(*heldout(task, np.full((3, 30), 1 / 30)))
    assert uniform[0] == pytest.approx(-math.log(30), abs=1e-5)
    assert true[0] > uniform[0] + 5 * true[1]


def assert_agree(base, other):
    """Held-out per-word log-likelihoods of two topic estimates agree: the paired difference
    over test documents within 3 of its standard errors, or within 0.01 nats per word (1%
    of perplexity; a test set's own sampling error here is ~0.06)."""
    difference, se = per_word(other[0] - base[0], base[1])
    assert abs(difference) <= max(3 * se, 0.01), (difference, se)


@pytest.mark.parametrize("learning_method", ["batch", "online"])
def test_scikit_learn_agrees_with_cavi(registry, task, logdensity, learning_method):
    sklearn = pytest.importorskip("sklearn.decomposition")
    corpus = task.extension(Corpus)
    words, counts = np.asarray(task.data["words"]), np.asarray(task.data["counts"])
    matrix = np.zeros((corpus.docs, corpus.vocab))
    np.add.at(matrix, (np.repeat(np.arange(corpus.docs), words.shape[1]), words.ravel()), counts.ravel())
    model = sklearn.LatentDirichletAllocation(
        n_components=corpus.topics, doc_topic_prior=corpus.alpha, topic_word_prior=corpus.eta,
        learning_method=learning_method, max_iter=100, batch_size=20, total_samples=corpus.docs, random_state=0,
    ).fit(matrix)
    batch = fit(registry, task, logdensity, "lda_vb")
    base = heldout(task, batch.family.means(batch.params)["beta"])
    assert_agree(base, heldout(task, model.components_ / model.components_.sum(1, keepdims=True)))


def test_gensim_agrees_with_cavi(registry, task, logdensity):
    gensim = pytest.importorskip("gensim")
    corpus = task.extension(Corpus)
    words, counts = np.asarray(task.data["words"]), np.asarray(task.data["counts"])
    # gensim wants each word once per document: the synthetic corpus has one slot per token
    documents = [sorted(bag(w for w, c in zip(words[d], counts[d]) if c > 0).items()) for d in range(corpus.docs)]
    model = gensim.models.LdaModel(
        documents, num_topics=corpus.topics, id2word={i: str(i) for i in range(corpus.vocab)},
        alpha=np.full(corpus.topics, corpus.alpha), eta=corpus.eta, passes=30, iterations=100,
        chunksize=corpus.docs, random_state=0,
    )
    batch = fit(registry, task, logdensity, "lda_vb")
    assert_agree(heldout(task, batch.family.means(batch.params)["beta"]), heldout(task, model.get_topics()))


# --------------------------------------------------------------------- end to end
TINY = "lda[docs=20,test_docs=5,vocab=10,doc_length=20]"


def test_run_lda_methods(tmp_path):
    out = tmp_path / "res"
    argv = ["run", "--task", TINY, "--method", "lda_vb", "--method", "lda_vb[mode=online,max_iters=50]",
            "--draws", "256", "--out", str(out)]
    assert main(argv) == 0
    rows = pd.read_parquet(out)
    assert (rows["status"] == "ok").all()
    metrics = set(rows["metric"])
    assert {"heldout_loglik", "perplexity", "elbo_per_word", "topic_recovery", "elbo"} <= metrics


def test_methods_without_a_corpus_decline(registry):
    task = registry.task("linreg")
    for name in ("lda_vb", "lda_gibbs"):
        ok, reason = registry.method(name).method.supports(task)
        assert not ok and "Corpus" in reason


@pytest.mark.slow
def test_run_every_method_on_lda(tmp_path):
    """``vibench run --task lda`` runs every method that supports it; exit 0 needs every run ok."""
    out = tmp_path / "res"
    assert main(["run", "--task", TINY, "--draws", "256", "--out", str(out)]) == 0
    rows = pd.read_parquet(out)
    assert (rows["status"] == "ok").all() and {"lda_vb", "lda_gibbs", "advi", "nuts"} <= set(rows["method"])
