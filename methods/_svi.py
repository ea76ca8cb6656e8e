"""The computation of :mod:`vibench.methods.svi` (declared there, with its parameters).

Local latents (``reparam`` mode, ``meanfield`` family; a task whose
:class:`vibench.structure.minibatch.Subsample` names ``local`` sites): q(z) = q(g)
Π_i q(z_i), each point i with its own mean-field factor. A step draws S and estimates
the ELBO without bias as

    E_q[log p̂_S] + H(q_g) + (N/|S|) Σ_{i∈S} H(q_i)

(:func:`vibench.structure.local.local_minibatch_logp`). Its gradient in q(g)'s
parameters is the scaled global gradient, updated by the optimizer every step; in point
i's parameters (i ∈ S) it is N/|S| times the gradient of point i's own ELBO term, which
involves no other point: Hoffman et al.'s local step, here by gradient. Point i's
factor moves only when i is in the minibatch, by its own optimizer state (moments and
step count, ``lr`` schedule over its expected ``steps·|S|/N`` visits), from its own
term's gradient (the N/|S| removed), so a point's step does not depend on how often it
was drawn.
"""

from __future__ import annotations

import math
from dataclasses import replace

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import optax

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.gaussian import FullRank, MeanField, gaussian_family
from vibench.methods._advi import make_optimizer, negative_elbo, optimize
from vibench.methods.svi import SVIConfig
from vibench.spec import BudgetTooSmall, field_range
from vibench.structure.local import LatentLayout, latent_layout, local_minibatch_logp
from vibench.structure.minibatch import (
    MinibatchConjugate,
    Subsample,
    minibatch_logp,
    sample_index,
)


def minibatch_negative_elbo(
    family, subsample: Subsample, logdensity: LogDensity, data: Data, config: SVIConfig
):
    """``loss(params, key_batch, key_draws)``: ADVI's negative ELBO of the minibatch log joint,
    for the minibatch drawn with ``key_batch`` and the draws of q made with ``key_draws``."""
    batch_logp = minibatch_logp(subsample, logdensity)
    batch_density = replace(logdensity, logp=lambda z, b: batch_logp(z, b["data"], b["index"]))

    def loss(params, key_batch, key_draws):
        index = sample_index(key_batch, subsample.size, config.batch_size)
        batch = {"data": subsample.select(data, index), "index": index}
        elbo = negative_elbo(family, batch_density, batch, config.num_samples, config.stl)
        return elbo(params, key_draws)

    return loss


def fit_reparam(subsample: Subsample, logdensity: LogDensity, data: Data, key, config: SVIConfig):
    family = gaussian_family(config.family, config.rank)
    key_init, key_steps = jax.random.split(key)
    params = family.init(logdensity.init(key_init), config.init_scale)
    loss = minibatch_negative_elbo(family, subsample, logdensity, data, config)
    optimizer = make_optimizer(config.optimizer, config.lr, config.schedule, config.steps)
    params, trace = optimize(
        lambda p, k: loss(p, *jax.random.split(k)), params, optimizer, key_steps, config.steps
    )
    return params, trace, family


def meanfield_entropy(log_scale: jax.Array) -> jax.Array:
    """H of N(m, diag(exp(2 log_scale))), summed over every entry of ``log_scale``."""
    return jnp.sum(log_scale) + log_scale.size * 0.5 * math.log(2 * math.pi * math.e)


def local_negative_elbo(subsample: Subsample, layout: LatentLayout, num_samples: int):
    """``loss(global_params, local_params, batch, index, key)``: minus the unbiased minibatch
    ELBO of the module doc, for mean-field ``global_params`` ({loc, log_scale} of shape
    (G,)) and the points ``index``'s ``local_params`` (of shape (|S|, L))."""
    logp = jax.vmap(local_minibatch_logp(subsample, layout), in_axes=(0, 0, None, None))
    family = MeanField()

    def loss(global_params, local_params, batch, index, key):
        key_global, key_local = jax.random.split(key)
        weight = subsample.size / index.shape[0]
        globals_ = family.sample(global_params, key_global, num_samples)
        locals_ = family.sample(local_params, key_local, num_samples)
        entropy = meanfield_entropy(global_params["log_scale"]) + weight * meanfield_entropy(
            local_params["log_scale"]
        )
        return -(jnp.mean(logp(globals_, locals_, batch, index)) + entropy)

    return loss


def fit_local(subsample: Subsample, logdensity: LogDensity, data: Data, key, config: SVIConfig):
    if config.family != "meanfield":
        raise ValueError(f"svi with local latents needs family=meanfield; got {config.family!r}")
    layout = latent_layout(subsample, logdensity)
    family = MeanField()
    key_init, key_steps = jax.random.split(key)
    globals_, locals_ = layout.split(logdensity.init(key_init))
    params = (family.init(globals_, config.init_scale), family.init(locals_, config.init_scale))
    weight = subsample.size / config.batch_size
    visits = max(1, math.ceil(config.steps / weight))
    global_opt = make_optimizer(config.optimizer, config.lr, config.schedule, config.steps)
    local_opt = make_optimizer(config.optimizer, config.lr, config.schedule, visits)
    states = (global_opt.init(params[0]), jax.vmap(local_opt.init)(params[1]))
    loss = local_negative_elbo(subsample, layout, config.num_samples)

    def step(carry, key):
        (global_params, local_params), (global_state, local_state) = carry
        key_batch, key_draws = jax.random.split(key)
        index = sample_index(key_batch, subsample.size, config.batch_size)
        rows = jax.tree.map(lambda a: a[index], (local_params, local_state))
        value, (global_grad, local_grad) = jax.value_and_grad(loss, argnums=(0, 1))(
            global_params, rows[0], subsample.select(data, index), index, key_draws
        )
        updates, global_state = global_opt.update(global_grad, global_state, global_params)
        global_params = optax.apply_updates(global_params, updates)
        own_grad = jax.tree.map(lambda g: g / weight, local_grad)  # point i's own term
        updates, row_state = jax.vmap(local_opt.update)(own_grad, rows[1], rows[0])
        rows = (optax.apply_updates(rows[0], updates), row_state)
        local_params, local_state = jax.tree.map(
            lambda whole, part: whole.at[index].set(part), (local_params, local_state), rows
        )
        return ((global_params, local_params), (global_state, local_state)), -value

    (params, _), trace = jax.lax.scan(step, (params, states), jax.random.split(key_steps, config.steps))
    flat = {name: layout.join(params[0][name], params[1][name]) for name in ("loc", "log_scale")}
    return flat, trace, family


def step_sizes(steps: int, kappa: float, tau: float) -> jax.Array:
    """Robbins–Monro steps ρ_t = (t + τ)^(−κ) for t = 1, ..., steps."""
    return (jnp.arange(1, steps + 1) + tau) ** (-kappa)


def gaussian_from_natural(precision: jax.Array, shift: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, cov) of the Gaussian with natural parameters (precision Λ, shift h): N(Λ⁻¹h, Λ⁻¹)."""
    chol = jnp.linalg.cholesky(precision)
    eye = jnp.eye(precision.shape[0], dtype=precision.dtype)
    return jsl.cho_solve((chol, True), shift), jsl.cho_solve((chol, True), eye)


def fullrank_update(state, estimate, rho):
    """λ ← (1 − ρ) λ + ρ λ̂ for one global factor; state = (precision, shift)."""
    return jax.tree.map(lambda old, new: (1 - rho) * old + rho * new, state, estimate)


def meanfield_update(state, estimate, rho):
    """Each coordinate's (P_i, g_i) in turn moves by ρ to its optimum given the others,
    (Λ̂_ii, ĥ_i − Σ_{j≠i} Λ̂_ij m_j); state = (P, g), mean m = g / P."""
    precision, shift = estimate
    diag = jnp.diag(precision)

    def update(i, state):
        p, g = state
        mean = g / p
        target = shift[i] - precision[i] @ mean + diag[i] * mean[i]
        return p.at[i].set((1 - rho) * p[i] + rho * diag[i]), g.at[i].set((1 - rho) * g[i] + rho * target)

    return jax.lax.fori_loop(0, diag.shape[0], update, state)


def natural_moments(state, meanfield: bool) -> tuple[jax.Array, jax.Array]:
    """(mean, cov) of q from its natural parameters."""
    if meanfield:
        p, g = state
        return g / p, jnp.diag(1 / p)
    return gaussian_from_natural(*state)


def fit_natural(
    subsample: Subsample,
    conjugate: MinibatchConjugate,
    logdensity: LogDensity,
    data: Data,
    key,
    config: SVIConfig,
):
    if config.family not in ("meanfield", "fullrank"):
        raise ValueError(f"svi[mode=natural] needs family meanfield or fullrank, not {config.family!r}")
    if not (0.5 < config.kappa <= 1 and config.tau >= 0):
        raise ValueError("svi[mode=natural] needs 0.5 < kappa <= 1 and tau >= 0 (Robbins–Monro)")
    meanfield = config.family == "meanfield"
    key_init, key_steps = jax.random.split(key)
    loc = logdensity.init(key_init)
    init_precision = jnp.full_like(loc, config.init_scale**-2)
    state = (init_precision, init_precision * loc)
    if not meanfield:
        state = (jnp.diag(state[0]), state[1])
    update = meanfield_update if meanfield else fullrank_update
    batch_logp = minibatch_logp(subsample, logdensity)

    def step(state, inputs):
        key, rho = inputs
        index = sample_index(key, subsample.size, config.batch_size)
        batch = subsample.select(data, index)
        estimate = conjugate.estimate(batch, index, subsample.size)
        mean, cov = natural_moments(state, meanfield)
        _, logdet = jnp.linalg.slogdet(cov)
        entropy = 0.5 * (logdet + mean.shape[0] * math.log(2 * math.pi * math.e))
        elbo = batch_logp(mean, batch, index) - 0.5 * jnp.sum(estimate[0] * cov) + entropy
        return update(state, estimate, rho), elbo

    rhos = step_sizes(config.steps, config.kappa, config.tau).astype(loc.dtype)
    state, trace = jax.lax.scan(step, state, (jax.random.split(key_steps, config.steps), rhos))
    mean, cov = natural_moments(state, meanfield)
    if meanfield:
        return {"loc": mean, "log_scale": -0.5 * jnp.log(state[0])}, trace, MeanField()
    chol = jnp.linalg.cholesky(cov)
    params = {"loc": mean, "log_diag": jnp.log(jnp.diag(chol)), "lower": chol}
    return params, trace, FullRank()


def minibatches_per_step(config: SVIConfig) -> int:
    """Minibatch evaluations per step: one per Monte Carlo draw (reparam), one (natural)."""
    return config.num_samples if config.mode == "reparam" else 1


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: SVIConfig):
    subsample = task.extension(Subsample)
    if not 1 <= config.batch_size <= subsample.size:
        raise ValueError(f"svi needs 1 <= batch_size <= {subsample.size} (the data points)")
    if subsample.local:
        if config.mode != "reparam":
            raise ValueError("svi with local latents needs mode=reparam")
        params, trace, family = fit_local(subsample, logdensity, data, key, config)
    elif config.mode == "natural":
        conjugate = task.extension(MinibatchConjugate)
        if conjugate is None:
            raise ValueError("svi[mode=natural] needs a MinibatchConjugate task extension")
        params, trace, family = fit_natural(subsample, conjugate, logdensity, data, key, config)
    else:
        params, trace, family = fit_reparam(subsample, logdensity, data, key, config)
    passes = config.steps * minibatches_per_step(config) * config.batch_size / subsample.size
    return Approximation(params=params, trace=trace, grad_evals=jnp.asarray(passes), family=family)


def supports(task: Task) -> tuple[bool, str]:
    if task.extension(Subsample) is None:
        return False, (
            "needs data that can be subsampled (a Subsample task extension: data points "
            "conditionally independent given global latents and their own local ones); "
            "mode=natural also needs a MinibatchConjugate extension"
        )
    return True, ""


def budget(config: SVIConfig, grad_evals: int, task: Task) -> SVIConfig:
    """Steps that touch at most ``grad_evals`` full passes' worth of likelihood terms of
    ``task``'s N data points: ``minibatches_per_step`` · |S| / N passes per step."""
    size = task.extension(Subsample).size
    per_step = minibatches_per_step(config) * config.batch_size  # per-datum terms
    if grad_evals * size < per_step:
        why = f"{minibatches_per_step(config)} minibatches of {config.batch_size} of {size} points per step"
        raise BudgetTooSmall(-(-per_step // size), why, grad_evals)
    return replace(config, steps=min(grad_evals * size // per_step, field_range(SVIConfig, "steps").high))
