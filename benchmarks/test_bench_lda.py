"""LDA fit times: vibench's CAVI and online VI beside scikit-learn's and gensim's, and
CAVI's cost per iteration as the corpus grows (1k, 10k, 100k documents).

Benchmark run (fixed iteration counts, compilation excluded for vibench; the tables are
printed at the end)::

    pytest benchmarks/test_bench_lda.py --benchmark-enable -n 0 -p no:cacheprovider

With benchmarks disabled (pyproject's default) everything runs once on a small corpus:
a smoke test of the same code (no timing asserted).

Per iteration the implementations do different amounts of local work: vibench runs
``local_iters`` (φ, γ) sweeps warm-started from the last iteration; scikit-learn runs
its E-step until the mean change of γ is below 1e-3 (at most 100 sweeps), from a fresh
random γ each iteration; gensim (``iterations`` sweeps at most, stopping at a change
below 1e-3) likewise. The table reports seconds per iteration (per document for the
online methods) as each library is normally run.
"""

from __future__ import annotations

import time

import jax
import numpy as np
import pytest

from vibench.harness.runner import compile_fit
from vibench.registry import discover
from vibench.structure.topics import Corpus, bag

CORPUS, SMOKE_CORPUS = "lda[docs=2000,vocab=500,topics=10,doc_length=50,test_docs=20]", \
    "lda[docs=100,vocab=30,topics=3,doc_length=20,test_docs=5]"
ITERATIONS, SMOKE_ITERATIONS = 20, 2
SCALE_DOCS, SMOKE_SCALE_DOCS = (1_000, 10_000, 100_000), (100, 200, 400)
TIMES: dict[str, float] = {}
PER_ITERATION: dict[int, float] = {}


def enabled(config: pytest.Config) -> bool:
    return config.getoption("benchmark_enable") or not config.getoption("benchmark_disable")


@pytest.fixture(scope="module")
def setting(pytestconfig):
    full = enabled(pytestconfig)
    task = discover().task(CORPUS if full else SMOKE_CORPUS)
    return task, ITERATIONS if full else SMOKE_ITERATIONS


def matrix(task) -> np.ndarray:
    corpus = task.extension(Corpus)
    words, counts = np.asarray(task.data["words"]), np.asarray(task.data["counts"])
    out = np.zeros((corpus.docs, corpus.vocab))
    np.add.at(out, (np.repeat(np.arange(corpus.docs), words.shape[1]), words.ravel()), counts.ravel())
    return out


def timed(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def vibench_fit(task, spec):
    choice = discover().method(spec)
    key = jax.random.key(0)
    fit, _ = compile_fit(task, choice, task.data, key)
    return lambda: fit(task.data, key)


@pytest.mark.parametrize("which", ["vibench batch", "sklearn batch", "vibench online", "sklearn online", "gensim online"])
def test_fit_times_side_by_side(setting, which):
    task, iterations = setting
    corpus = task.extension(Corpus)
    batch_size = max(1, corpus.docs // 10)
    if which == "vibench batch":
        run = vibench_fit(task, f"lda_vb[max_iters={iterations},tol=0]")
    elif which == "vibench online":
        run = vibench_fit(task, f"lda_vb[mode=online,max_iters={10 * iterations},batch_size={batch_size}]")
    elif which.startswith("sklearn"):
        from sklearn.decomposition import LatentDirichletAllocation

        x, method = matrix(task), which.split()[1]
        run = lambda: LatentDirichletAllocation(  # noqa: E731
            n_components=corpus.topics, doc_topic_prior=corpus.alpha, topic_word_prior=corpus.eta,
            learning_method=method, max_iter=iterations, batch_size=batch_size, total_samples=corpus.docs,
            random_state=0,
        ).fit(x).components_
    else:
        gensim = pytest.importorskip("gensim")
        words, counts = np.asarray(task.data["words"]), np.asarray(task.data["counts"])
        docs = [sorted(bag(w for w, c in zip(words[d], counts[d]) if c > 0).items()) for d in range(corpus.docs)]
        run = lambda: gensim.models.LdaModel(  # noqa: E731
            docs, num_topics=corpus.topics, id2word={i: str(i) for i in range(corpus.vocab)},
            alpha=np.full(corpus.topics, corpus.alpha), eta=corpus.eta, passes=iterations,
            chunksize=batch_size, random_state=0, eval_every=None,
        ).get_topics()
    run()  # warm-up (vibench's compile is outside both)
    seconds = min(timed(run) for _ in range(2))
    per = corpus.docs * iterations if "online" in which else iterations
    TIMES[which] = seconds / per


@pytest.mark.parametrize("which", range(3))
def test_cavi_cost_per_iteration(pytestconfig, which):
    docs = (SCALE_DOCS if enabled(pytestconfig) else SMOKE_SCALE_DOCS)[which]
    task = discover().task(f"lda[docs={docs},vocab=500,topics=10,doc_length=50,test_docs=20]")
    iterations = 5
    run = vibench_fit(task, f"lda_vb[max_iters={iterations},tol=0]")
    run()
    PER_ITERATION[docs] = min(timed(run) for _ in range(2)) / iterations


def test_print_tables(request, pytestconfig):
    """Prints both tables; with benchmarks enabled, asserts CAVI's per-iteration cost grows
    at most 2x faster than linearly from the smallest to the largest corpus."""
    if len(TIMES) < 4 or len(PER_ITERATION) < 3:
        pytest.skip("run the whole module")
    writer = request.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["", "LDA fit times (s per iteration; online: s per document processed)"]
    lines += [f"  {name:>16} {seconds:.3e}" for name, seconds in TIMES.items()]
    lines += ["CAVI s per iteration by corpus size"]
    docs = sorted(PER_ITERATION)
    lines += [f"  {d:>8} {PER_ITERATION[d]:.3e}  per document {PER_ITERATION[d] / d:.3e}" for d in docs]
    for line in lines:
        writer.write_line(line)
    if enabled(pytestconfig):
        assert PER_ITERATION[docs[-1]] / PER_ITERATION[docs[0]] <= 2 * docs[-1] / docs[0]
