"""The computation of :mod:`vibench.methods.bbvi` (declared there, with its parameters)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.gaussian import gaussian_family
from vibench.methods._advi import make_optimizer
from vibench.methods.bbvi import BBVIConfig


def draws(family, params, keys: jax.Array) -> jax.Array:
    """One draw of q per key, so that the reparameterization gradient can reuse their noise."""
    return jax.vmap(lambda key: family.sample(params, key, 1)[0])(keys)


def score_terms(family, logdensity: LogDensity, data: Data, params, z):
    """Per-draw ``(f, h, log p − log q)`` at draws ``z`` of shape (S, dim): the score
    h = ∇_λ log q(z) and f = h · (log p − log q), params pytrees with a leading S axis."""
    log_ratio = jax.vmap(logdensity.logp, (0, None))(z, data) - family.log_prob(params, z)
    h = jax.vmap(jax.grad(family.log_prob), (None, 0))(params, z)

    def weighted(score):
        return score * log_ratio.reshape((-1,) + (1,) * (score.ndim - 1))

    return jax.tree.map(weighted, h), h, log_ratio


def control_variate_scale(f, h):
    """a_d = Cov(f_d, h_d) / Var(h_d) per component, over the draws (0 where h_d is constant)."""

    def scale(f, h):
        hc = h - jnp.mean(h, axis=0)
        var = jnp.mean(hc**2, axis=0)
        cov = jnp.mean((f - jnp.mean(f, axis=0)) * hc, axis=0)
        return jnp.where(var > 0, cov / jnp.where(var > 0, var, 1.0), 0.0)

    return jax.tree.map(scale, f, h)


def per_draw_gradients(f, h, control_variate: bool):
    """The one-draw gradient estimates f(z_s) − a ⊙ h(z_s), a pytree with a leading S axis."""
    if not control_variate:
        return f
    a = control_variate_scale(f, h)
    return jax.tree.map(lambda fd, hd, ad: fd - ad * hd, f, h, a)


def score_gradient(family, logdensity, data, params, key, config: BBVIConfig):
    """``(ELBO gradient estimate, ELBO estimate)`` from ``num_samples`` draws."""
    z = draws(family, params, jax.random.split(key, config.num_samples))
    f, h, log_ratio = score_terms(family, logdensity, data, params, z)
    grads = per_draw_gradients(f, h, config.control_variate)
    return jax.tree.map(lambda g: jnp.mean(g, axis=0), grads), jnp.mean(log_ratio)


def total_variance(per_draw) -> jax.Array:
    """Trace of the covariance of a per-draw gradient pytree (leading axis: draws)."""
    return sum(jnp.sum(jnp.var(g, axis=0, ddof=1)) for g in jax.tree.leaves(per_draw))


def gradient_variances(family, logdensity, data, params, key, config: BBVIConfig) -> dict:
    """One-draw gradient variances at ``params``: this method's estimator, the plain score
    estimator and the reparameterization estimator, from the same ``variance_draws`` draws."""
    keys = jax.random.split(key, config.variance_draws)
    f, h, _ = score_terms(family, logdensity, data, params, draws(family, params, keys))

    def reparam_objective(params, key):
        return logdensity.logp(family.sample(params, key, 1)[0], data) + family.entropy(params)

    reparam = jax.vmap(jax.grad(reparam_objective), (None, 0))(params, keys)
    return {
        "grad_variance": total_variance(per_draw_gradients(f, h, config.control_variate)),
        "score_grad_variance": total_variance(f),
        "reparam_grad_variance": total_variance(reparam),
    }


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: BBVIConfig):
    if config.num_samples < 2 and config.control_variate:
        raise ValueError("bbvi: the control variate's scale needs num_samples >= 2")
    family = gaussian_family(config.family, config.rank)
    key_init, key_steps, key_variance = jax.random.split(key, 3)
    params = family.init(logdensity.init(key_init), config.init_scale)
    optimizer = make_optimizer(config.optimizer, config.lr, config.schedule, config.steps)

    def step(carry, key):
        params, state = carry
        grads, elbo = score_gradient(family, logdensity, data, params, key, config)
        # optax descends: the loss gradient is minus the ELBO gradient.
        updates, state = optimizer.update(jax.tree.map(jnp.negative, grads), state, params)
        return (optax.apply_updates(params, updates), state), elbo

    (params, _), trace = jax.lax.scan(
        step, (params, optimizer.init(params)), jax.random.split(key_steps, config.steps)
    )
    diagnostics = gradient_variances(family, logdensity, data, params, key_variance, config)
    diagnostics["logp_evals"] = jnp.asarray(config.steps * config.num_samples)
    return Approximation(
        params=params,
        trace=trace,
        grad_evals=jnp.asarray(0),
        family=family,
        diagnostics=diagnostics,
    )
