"""One epoch of mean-field VI (``svi``, minibatches) on ``uci`` against a hand-written JAX
loop of the same model, estimator and optimizer; the fit-time ratio is printed.

Benchmark run (protein split 0: 41 157 training points of the 45 730, 100 hidden units;
one epoch = N / batch_size steps)::

    VIBENCH_DATA=/work/shared/data pytest benchmarks/test_bench_uci.py --benchmark-enable -n 0 -s -p no:cacheprovider

With benchmarks disabled (pyproject's default) the same code runs once on boston with
20 steps, and checks that the comparison is fair: the hand-written loop reproduces
vibench's fit number for number (same initialization, minibatches, draws, Adam with
the same cosine schedule), so the ratio measures overhead only. Skipped without the
UCI data (``$VIBENCH_DATA``).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vibench.data.files import ENV_VAR
from vibench.data.uci import load_split
from vibench.logdensity import derive_logdensity
from vibench.registry import discover
from vibench.structure.minibatch import Subsample
from vibench.tasks._uci import Normalized

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BATCH, SAMPLES, ROUNDS = 100, 1, 5


def data_dir() -> Path | None:
    for root in (os.environ.get(ENV_VAR), SHARED):
        if root and (Path(root) / "uci").is_dir():
            return Path(root)
    return None


def handwritten(x: jax.Array, y: jax.Array, hidden: int, prior_scale: float, steps: int, lr: float):
    """``fit(key) -> (loc, log_scale, trace)``: mean-field VI of the uci model in plain JAX."""
    n, d = x.shape
    shapes = {"b1": (hidden,), "b2": (), "precision": (), "w1": (d, hidden), "w2": (hidden,)}
    sizes = [math.prod(s) for s in shapes.values()]
    dim = sum(sizes)
    optimizer = optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=0.01))

    def log_joint(z, xb, yb):
        parts = dict(zip(shapes, jnp.split(z, np.cumsum(sizes)[:-1])))
        w = {k: v.reshape(shapes[k]) for k, v in parts.items()}
        log_prec = w["precision"]  # the unconstrained coordinate: log precision
        h = jax.nn.relu((xb @ w["w1"] + w["b1"]) / math.sqrt(d + 1))
        f = (h @ w["w2"] + w["b2"]) / math.sqrt(hidden + 1)
        weights = jnp.concatenate([parts[k] for k in ("b1", "b2", "w1", "w2")])
        prior = jnp.sum(-0.5 * (weights / prior_scale) ** 2 - math.log(prior_scale) - 0.5 * math.log(2 * math.pi))
        prec = jnp.exp(log_prec)
        log_gamma = 6 * math.log(6) - math.lgamma(6) + 5 * log_prec - 6 * prec + log_prec  # + log-Jacobian
        lik = jnp.sum(0.5 * log_prec - 0.5 * math.log(2 * math.pi) - 0.5 * prec * (yb - f) ** 2)
        return prior + log_gamma + n / xb.shape[0] * lik

    def loss(params, key):
        key_batch, key_draws = jax.random.split(key)
        index = jax.random.choice(key_batch, n, (BATCH,), replace=False)
        eps = jax.random.normal(key_draws, (SAMPLES, dim))
        z = params["loc"] + jnp.exp(params["log_scale"]) * eps
        logp = jax.vmap(log_joint, (0, None, None))(z, x[index], y[index])
        entropy = jnp.sum(params["log_scale"]) + dim * 0.5 * math.log(2 * math.pi * math.e)
        return -(jnp.mean(logp) + entropy)

    @jax.jit
    def fit(key):
        key_init, key_steps = jax.random.split(key)
        loc = jax.random.uniform(key_init, (dim,), minval=-2.0, maxval=2.0)
        params = {"loc": loc, "log_scale": jnp.full(dim, math.log(0.1))}

        def step(carry, key):
            params, state = carry
            value, grads = jax.value_and_grad(loss)(params, key)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), -value

        (params, _), trace = jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key_steps, steps))
        return params, trace

    return fit


@pytest.fixture(scope="module")
def problem(pytestconfig: pytest.Config):
    root = data_dir()
    if root is None:
        pytest.skip("no UCI data (set VIBENCH_DATA)")
    enabled = pytestconfig.getoption("benchmark_enable") or not pytestconfig.getoption("benchmark_disable")
    spec = "uci[dataset=protein,hidden=100]" if enabled else "uci"
    registry = discover()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_VAR, str(root))
        task = registry.task(spec)
    n = task.extension(Subsample).size
    steps = n // BATCH if enabled else 20
    choice = registry.method(f"svi[batch_size={BATCH},steps={steps},num_samples={SAMPLES},lr=0.01,init_scale=0.1]")
    return task, choice, steps


def timed(fn, key) -> float:
    """Smallest of ROUNDS wall-clock times of a compiled ``fn(key)``, device synchronized."""
    jax.block_until_ready(fn(key))
    times = []
    for _ in range(ROUNDS):
        clock = time.perf_counter()
        jax.block_until_ready(fn(key))
        times.append(time.perf_counter() - clock)
    return min(times)


def test_one_epoch_against_handwritten(problem, capsys):
    task, choice, steps = problem
    logdensity = derive_logdensity(task)
    vibench_fit = jax.jit(lambda key: choice.method.fit(task, logdensity, task.data, key, choice.config))
    p = discover().task_family(task.label)[1]
    data = Normalized(load_split(p.dataset, p.split, data_dir=data_dir()))  # the task's training data
    hand_fit = handwritten(data.x_train, data.y_train, p.hidden, p.prior_scale, steps, choice.config.lr)
    key = jax.random.key(0)
    approx = vibench_fit(key)
    hand_params, hand_trace = hand_fit(key)
    np.testing.assert_allclose(hand_trace, approx.trace, rtol=1e-4)
    np.testing.assert_allclose(hand_params["loc"], approx.params["loc"], atol=1e-4)
    seconds = {"vibench": timed(vibench_fit, key), "handwritten": timed(lambda k: hand_fit(k), key)}
    with capsys.disabled():
        print(
            f"\n{task.label}, {steps} steps of {BATCH} points: vibench svi {seconds['vibench']:.3f} s, "
            f"hand-written {seconds['handwritten']:.3f} s, ratio {seconds['vibench'] / seconds['handwritten']:.2f}x"
        )
