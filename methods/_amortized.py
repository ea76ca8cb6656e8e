"""The computation of :mod:`vibench.methods.amortized` (declared there, with its parameters)."""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp

from vibench.core import Approximation, Data, LogDensity, Task
from vibench.families.amortized import AmortizedGaussian, LinearEncoder, MLPEncoder, encoder_inputs
from vibench.logdensity import latent_sites
from vibench.methods._advi import make_optimizer, optimize
from vibench.methods.amortized import AmortizedConfig
from vibench.spec import BudgetTooSmall, field_range
from vibench.structure.local import latent_layout, local_minibatch_logp
from vibench.structure.minibatch import Subsample, sample_index


def batch_size(config: AmortizedConfig, size: int) -> int:
    """Points per step: ``config.batch_size``, or all ``size`` points for 0."""
    if config.batch_size > size:
        raise ValueError(
            f"amortized needs 0 <= batch_size <= {size} (the data points); got {config.batch_size}"
        )
    return config.batch_size or size


def make_family(
    config: AmortizedConfig, subsample: Subsample, logdensity: LogDensity, inputs
) -> AmortizedGaussian:
    layout = latent_layout(subsample, logdensity)
    if config.encoder == "linear":
        encoder = LinearEncoder(inputs.shape[1], layout.per_point)
    else:
        encoder = MLPEncoder(inputs.shape[1], layout.per_point, config.hidden)
    return AmortizedGaussian(encoder, layout)


def minibatch_negative_elbo(family: AmortizedGaussian, subsample: Subsample, data: Data, inputs, config):
    """``loss(phi, key)``: minus the unbiased minibatch ELBO of the encoder φ (the module doc
    of :mod:`vibench.methods.amortized`); the inputs are data, never optimized."""
    size = batch_size(config, subsample.size)
    weight = subsample.size / size
    logp = jax.vmap(local_minibatch_logp(subsample, family.layout), in_axes=(None, 0, None, None))

    def loss(phi, key):
        key_batch, key_draws = jax.random.split(key)
        index = sample_index(key_batch, subsample.size, size)
        params = family.bind({"encoder": phi}, inputs[index])
        z, log_q = family.sample_and_log_prob(params, key_draws, config.num_samples, stick=config.stl)
        _, local = family.layout.split(z)
        log_joint = jnp.mean(logp(z[0, :0], local, subsample.select(data, index), index))
        if config.stl:
            return -(log_joint - weight * jnp.mean(log_q))
        return -(log_joint + weight * family.entropy(params))

    return loss


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: AmortizedConfig):
    subsample = task.extension(Subsample)
    inputs = encoder_inputs(subsample, data)
    family = make_family(config, subsample, logdensity, inputs)
    key_init, key_steps = jax.random.split(key)
    phi = family.init(key_init, inputs, config.init_scale)["encoder"]
    loss = minibatch_negative_elbo(family, subsample, data, inputs, config)
    optimizer = make_optimizer(config.optimizer, config.lr, config.schedule, config.steps)
    phi, trace = optimize(loss, phi, optimizer, key_steps, config.steps)
    passes = config.steps * config.num_samples * batch_size(config, subsample.size) / subsample.size
    return Approximation(
        params=family.bind({"encoder": phi}, inputs),
        trace=trace,
        grad_evals=jnp.asarray(passes),
        family=family,
    )


def supports(task: Task) -> tuple[bool, str]:
    subsample = task.extension(Subsample)
    needs = "needs every latent local to a data point (a Subsample task extension naming them in local)"
    if subsample is None or not subsample.local:
        return False, needs
    global_sites = sorted(set(latent_sites(task.model, task.data)) - set(subsample.local))
    if global_sites:
        return False, f"{needs}; global latents: {', '.join(global_sites)}"
    return True, ""


def budget(config: AmortizedConfig, grad_evals: int, task: Task) -> AmortizedConfig:
    """Steps that spend at most ``grad_evals`` full-data passes: num_samples·|S|/N per step."""
    size = task.extension(Subsample).size
    points = batch_size(config, size)
    per_step = config.num_samples * points  # per-datum terms
    if grad_evals * size < per_step:
        why = f"{config.num_samples} draws on {points} of {size} points per step"
        raise BudgetTooSmall(-(-per_step // size), why, grad_evals)
    return replace(
        config, steps=min(grad_evals * size // per_step, field_range(AmortizedConfig, "steps").high)
    )
