"""The computation of :mod:`vibench.methods.svgd` (declared there, with its parameters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from vibench.core import Approximation, Array, Data, LogDensity, Task
from vibench.families.draws import Draws
from vibench.methods._advi import budget_steps, make_optimizer
from vibench.methods.svgd import SVGDConfig


def median_bandwidth(sq_dists: Array) -> Array:
    """h = med² / log(n + 1), med the median distance over distinct pairs."""
    n = sq_dists.shape[0]
    rows, cols = jnp.triu_indices(n, k=1)
    return jnp.median(sq_dists[rows, cols]) / jnp.log(n + 1.0)


def stein_direction(particles: Array, scores: Array) -> tuple[Array, Array, Array]:
    """``(φ at each particle, KSD, h)`` for particles (n, dim) with scores ∇log p (n, dim)."""
    n, dim = particles.shape
    diffs = particles[:, None, :] - particles[None, :, :]  # zᵢ − zⱼ
    sq_dists = jnp.sum(diffs**2, axis=-1)
    h = median_bandwidth(sq_dists)
    k = jnp.exp(-sq_dists / h)
    # ∇_{zⱼ} k(zⱼ, zᵢ) = (2/h) (zᵢ − zⱼ) k(zᵢ, zⱼ): the repulsion between particles.
    phi = (k @ scores + (2 / h) * jnp.einsum("ij,ijd->id", k, diffs)) / n
    # Stein kernel u(zᵢ, zⱼ) = k [sᵢᵀsⱼ + (2/h)(sᵢ − sⱼ)ᵀ(zᵢ − zⱼ) + 2 dim/h − 4‖zᵢ − zⱼ‖²/h²].
    score_diffs = scores[:, None, :] - scores[None, :, :]
    stein = k * (
        scores @ scores.T
        + (2 / h) * jnp.sum(score_diffs * diffs, axis=-1)
        + 2 * dim / h
        - 4 * sq_dists / h**2
    )
    return phi, jnp.sqrt(jnp.maximum(jnp.mean(stein), 0.0)), h


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: SVGDConfig):
    particles = jax.vmap(logdensity.init)(jax.random.split(key, config.num_particles))
    optimizer = make_optimizer(config.optimizer, config.lr, config.schedule, config.steps)
    score = jax.vmap(jax.grad(logdensity.logp), in_axes=(0, None))

    def step(carry, _):
        particles, state = carry
        phi, ksd, h = stein_direction(particles, score(particles, data))
        updates, state = optimizer.update(-phi, state, particles)
        return (optax.apply_updates(particles, updates), state), (ksd, h)

    (particles, _), (trace, bandwidths) = jax.lax.scan(
        step, (particles, optimizer.init(particles)), None, length=config.steps
    )
    return Approximation(
        params={"draws": particles[None]},
        trace=trace,
        grad_evals=jnp.asarray(config.steps * config.num_particles),
        family=Draws(kind="particles"),
        objective="ksd",
        diagnostics={"bandwidth": bandwidths[-1]},
    )


def budget(config: SVGDConfig, grad_evals: int, task: Task) -> SVGDConfig:
    """The most steps of one gradient per particle that fit in ``grad_evals``."""
    why = f"num_particles={config.num_particles} per step"
    return budget_steps(config, grad_evals, config.num_particles, why)
