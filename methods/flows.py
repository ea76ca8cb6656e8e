"""Normalizing-flow VI: a flowjax flow q trained on the ELBO (Rezende & Mohamed 2015).

q is a :class:`vibench.flow_family.Flow` (affine coupling, inverse autoregressive, or
rational-quadratic spline autoregressive layers, then a lower-triangular linear layer
started at the task's initial point with scale ``init_scale``; so q contains the
full-rank Gaussians). Each step estimates the ELBO
E_q[log p(x, z) − log q(z)] from ``num_samples`` draws with log q from the same
forward pass that made them, and takes its pathwise gradient; an optax optimizer
runs under ``lax.scan`` (:func:`vibench.methods.advi.optimize`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from vibench.core import Approximation, Data, LogDensity, Method, Task
from vibench.flow_family import Flow
from vibench.methods.advi import budget, make_optimizer, optimize, supports

VERSION = "1"


@dataclass(frozen=True)
class FlowConfig:
    """kind: ``realnvp`` (affine coupling), ``iaf`` (affine inverse autoregressive) or
    ``nsf`` (rational-quadratic spline autoregressive); layers: flow layers; hidden,
    depth: width and hidden layers of each conditioner network; knots, interval: spline
    bins and the interval [−interval, interval] they cover (nsf only); steps: optimizer
    steps; num_samples: draws per ELBO estimate; optimizer, lr, schedule: as in ADVI;
    init_scale: the last layer's initial scale (Stan's ADVI starts at 1)."""

    kind: Literal["realnvp", "iaf", "nsf"] = "iaf"
    layers: int = 4
    hidden: int = 32
    depth: int = 1
    knots: int = 8
    interval: float = 4.0
    steps: int = 2000
    num_samples: int = 16
    optimizer: Literal["adam", "adamw", "adabelief", "rmsprop", "sgd"] = "adam"
    lr: float = 0.005
    schedule: Literal["cosine", "constant"] = "cosine"
    init_scale: float = 1.0


def flow_of(config: FlowConfig, dim: int) -> Flow:
    return Flow(
        kind=config.kind,
        dim=dim,
        layers=config.layers,
        hidden=config.hidden,
        depth=config.depth,
        knots=config.knots,
        interval=config.interval,
    )


def negative_elbo(family: Flow, logdensity: LogDensity, data: Data, num_samples: int):
    """``loss(params, key)``: the negative Monte Carlo ELBO, log q from the forward pass."""
    logp = jax.vmap(logdensity.logp, in_axes=(0, None))

    def loss(params, key):
        z, log_q = family.sample_and_log_prob(params, key, num_samples)
        return -jnp.mean(logp(z, data) - log_q)

    return loss


def fit(task: Task, logdensity: LogDensity, data: Data, key: jax.Array, config: FlowConfig):
    family = flow_of(config, logdensity.dim)
    key_loc, key_weights, key_steps = jax.random.split(key, 3)
    params = family.init(key_weights, logdensity.init(key_loc), config.init_scale)
    loss = negative_elbo(family, logdensity, data, config.num_samples)
    optimizer = make_optimizer(config.optimizer, config.lr, config.schedule, config.steps)
    params, trace = optimize(loss, params, optimizer, key_steps, config.steps)
    return Approximation(
        params=params,
        trace=trace,
        grad_evals=jnp.asarray(config.steps * config.num_samples),
        family=family,
    )


flow = Method(
    name="flow",
    version=VERSION,
    Config=FlowConfig,
    supports=supports,
    fit=fit,
    budget=budget,
    doc=__doc__,
)
