"""The fits compared by the ADVI-overhead benchmarks, shared by pytest-benchmark and asv.

Issue "vibench's ADVI overhead": does reaching ADVI through the harness (a NumPyro
model turned into a flat log density by ``potential_energy``, a registered method,
``vibench.runner.compile_fit``) cost fit time against writing the loop by hand? Four
fits of the same problem:

- ``vibench``: ``advi`` on the task, compiled the way the runner compiles it;
- ``handwritten``: an optax + ``lax.scan`` loop on the PPCA log joint written in
  jax.numpy, with the same family (mean-field Gaussian), initialization, random
  draws, steps, draws per step, optimizer and learning-rate schedule;
- ``svi_run``: NumPyro's ``SVI(...).run(..., progress_bar=False)`` with ``AutoNormal``
  and ``Trace_ELBO(num_particles=num_samples)`` on the task's model, the same steps,
  optimizer, schedule and initial distribution, jitted and compiled ahead of time like
  the others. NumPyro's own choices stay: the scale is a softplus-constrained
  parameter (not a log-scale) and log q is estimated at the draws (not in closed form);
- ``svi_run_as_called``: the same ``SVI.run`` called as a user calls it. Outside
  ``jit`` its ``lax.scan`` is traced and compiled again on every call, so its fit time
  includes that compilation.

Every fit is a :class:`Fit` whose ``run()`` fits once and blocks until the result is
ready; compilation (where it can be done ahead) happens when the fit is built.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpyro
import optax
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from numpyro.infer.initialization import init_to_uniform
from numpyro.optim import optax_to_numpyro

from vibench.core import Array, Task
from vibench.harness.runner import compile_fit, logdensity_of
from vibench.registry import MethodChoice, discover

SEED = 0
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class Specs:
    """The task and method SPECs a suite runs."""

    task: str
    method: str


BENCHMARK = Specs(task="ppca[n=500]", method="advi")
SMOKE = Specs(task="ppca[n=20]", method="advi[steps=20]")


@dataclass(frozen=True, eq=False)
class PPCALoadings:
    """W (d, k), b (d,) and σ of x_n ~ N(W z_n + b, σ² I), as the task's model holds them."""

    w: Array
    b: Array
    sigma: Array


@dataclass(frozen=True, eq=False)
class Problem:
    """A ppca task, the ADVI choice, the fit key and the task's loadings."""

    task: Task
    choice: MethodChoice
    key: jax.Array
    loadings: PPCALoadings

    @property
    def latent_shape(self) -> tuple[int, int]:
        return logdensity_of(self.task).site_shapes["z"]


@dataclass(frozen=True)
class Fit:
    """``run()`` fits once and blocks until done; ``elbo_trace(result)`` is the ELBO per
    step of its result; ``compile_s`` is the ahead-of-time compile time, ``None`` where
    the fit compiles on every call."""

    run: Callable[[], Any]
    elbo_trace: Callable[[Any], Array]
    compile_s: float | None


def build_problem(specs: Specs, seed: int = SEED) -> Problem:
    """The task and method named by ``specs``; the method must be plain mean-field ADVI."""
    registry = discover()
    task = registry.task(specs.task)
    choice = registry.method(specs.method)
    config = choice.config
    if choice.method.name != "advi" or task.name != "ppca":
        raise ValueError(f"the baselines fit advi on ppca, not {choice.label} on {task.label}")
    plain = (config.family, config.optimizer, config.schedule, config.stl)
    if plain != ("meanfield", "adam", "cosine", False):
        raise ValueError(
            f"the baselines are mean-field Adam with a cosine schedule, not {choice.label}"
        )
    return Problem(task, choice, jax.random.key(seed), ppca_loadings(task))


def ppca_loadings(task: Task) -> PPCALoadings:
    """Read W, b and σ off the model's ``x`` site, whose mean is z Wᵀ + b for substituted z.

    At z = 0 each row of the mean is b, and the derivative of the first row in z₁ is W
    (exactly: forward-mode differentiation of a product is exact in floating point).
    """
    n, k = logdensity_of(task).site_shapes["z"]

    def x_site(z: Array):
        substituted = numpyro.handlers.substitute(task.model, data={"z": z})
        return numpyro.handlers.trace(substituted).get_trace(task.data)["x"]["fn"].base_dist

    zero = jnp.zeros((n, k))
    at_zero = x_site(zero)
    w = jax.jacfwd(lambda z: x_site(z).loc[0])(zero)[:, 0, :]
    return PPCALoadings(w=w, b=at_zero.loc[0], sigma=jnp.reshape(at_zero.scale, ()))


def ppca_log_joint(loadings: PPCALoadings, z_flat: Array, x: Array) -> Array:
    """log p(x, z) = Σ log N(z; 0, 1) + Σ log N(x; z Wᵀ + b, σ²), z_flat the row-major z:

    −½ Σ z² − ½ Σ (x − z Wᵀ − b)² / σ² − ½ nk log 2π − nd (log σ + ½ log 2π),
    as sums of squares (fewer operations per element than n(k + d) normal log pdfs).
    """
    (n, d), k = x.shape, loadings.w.shape[1]
    z = z_flat.reshape(n, k)
    residual = x - z @ loadings.w.T - loadings.b
    squares = jnp.sum(z**2) + jnp.sum(residual**2) / loadings.sigma**2
    constant = n * k * HALF_LOG_2PI + n * d * (jnp.log(loadings.sigma) + HALF_LOG_2PI)
    return -0.5 * squares - constant


def adam_cosine(config: Any) -> optax.GradientTransformation:
    """Adam whose rate decays from ``config.lr`` to 1% over ``config.steps`` (a cosine)."""
    return optax.adam(optax.cosine_decay_schedule(config.lr, config.steps, alpha=0.01))


def handwritten_advi(problem: Problem) -> Callable[[Array, jax.Array], tuple[dict, Array]]:
    """``fit(x, key) -> (params, elbo trace)``: mean-field ADVI written out by hand.

    The same estimator as vibench's ADVI (Monte Carlo E_q[log p] plus the closed-form
    entropy of q), and the same use of the random key (split into an initialization
    key and one key per step; loc uniform in (−2, 2), log-scale log(init_scale)), so
    both fits see the same draws and can be compared number for number.
    """
    config = problem.choice.config
    n, k = problem.latent_shape
    dim = n * k
    optimizer = adam_cosine(config)
    log_joint = jax.vmap(lambda z, x: ppca_log_joint(problem.loadings, z, x), in_axes=(0, None))

    def negative_elbo(params: dict[str, Array], x: Array, key: jax.Array) -> Array:
        eps = jax.random.normal(key, (config.num_samples, dim))
        z = params["loc"] + jnp.exp(params["log_scale"]) * eps
        entropy = jnp.sum(params["log_scale"]) + dim * (0.5 + HALF_LOG_2PI)
        return -(jnp.mean(log_joint(z, x)) + entropy)

    def fit(x: Array, key: jax.Array) -> tuple[dict[str, Array], Array]:
        key_init, key_steps = jax.random.split(key)
        params = {
            "loc": jax.random.uniform(key_init, (dim,), minval=-2.0, maxval=2.0),
            "log_scale": jnp.full((dim,), math.log(config.init_scale)),
        }

        def step(carry, key):
            params, state = carry
            value, grads = jax.value_and_grad(negative_elbo)(params, x, key)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), -value

        (params, _), trace = jax.lax.scan(
            step, (params, optimizer.init(params)), jax.random.split(key_steps, config.steps)
        )
        return params, trace

    return fit


def numpyro_svi(problem: Problem, num_particles: int | None = None) -> SVI:
    """SVI with ``AutoNormal`` on the task's model, initialized like vibench's ADVI.

    The guide's prototype is built here, eagerly (``svi.init``), so that a later
    ``jit`` of ``svi.run`` does not store tracers in it.
    """
    config = problem.choice.config
    guide = AutoNormal(
        problem.task.model, init_loc_fn=init_to_uniform(radius=2.0), init_scale=config.init_scale
    )
    svi = SVI(
        problem.task.model,
        guide,
        optax_to_numpyro(adam_cosine(config)),
        Trace_ELBO(num_particles=num_particles or config.num_samples),
    )
    svi.init(problem.key, problem.task.data)
    return svi


def vibench_fit(problem: Problem) -> Fit:
    data, key = problem.task.data, problem.key
    fit, compile_s = compile_fit(problem.task, problem.choice, data, key)
    return Fit(
        lambda: jax.block_until_ready(fit(data, key)), lambda approx: approx.trace, compile_s
    )


def handwritten_fit(problem: Problem) -> Fit:
    x, key = problem.task.data["x"], problem.key
    start = time.perf_counter()
    fit = jax.jit(handwritten_advi(problem)).lower(x, key).compile()
    compile_s = time.perf_counter() - start
    return Fit(lambda: jax.block_until_ready(fit(x, key)), lambda result: result[1], compile_s)


def svi_run_fit(problem: Problem) -> Fit:
    svi, steps = numpyro_svi(problem), problem.choice.config.steps
    data, key = problem.task.data, problem.key
    start = time.perf_counter()
    run = jax.jit(lambda data, key: svi.run(key, steps, data, progress_bar=False))
    fit = run.lower(data, key).compile()
    compile_s = time.perf_counter() - start
    return Fit(lambda: jax.block_until_ready(fit(data, key)), _svi_elbo_trace, compile_s)


def svi_run_as_called_fit(problem: Problem) -> Fit:
    svi, steps = numpyro_svi(problem), problem.choice.config.steps
    data, key = problem.task.data, problem.key

    def run():
        return jax.block_until_ready(svi.run(key, steps, data, progress_bar=False))

    return Fit(run, _svi_elbo_trace, None)


def _svi_elbo_trace(result) -> Array:
    return -result.losses


BUILDERS: dict[str, Callable[[Problem], Fit]] = {
    "vibench": vibench_fit,
    "handwritten": handwritten_fit,
    "svi_run": svi_run_fit,
    "svi_run_as_called": svi_run_as_called_fit,
}
