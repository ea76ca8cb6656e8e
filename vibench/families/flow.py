"""Normalizing-flow families: flowjax flows split into trainable arrays and static structure.

A flow q is z = loc + L T(ε), ε ~ N(0, I), where T is a stack of flowjax layers
(affine coupling, affine autoregressive, rational-quadratic autoregressive, or
rational-quadratic then affine autoregressive, each followed by a permutation) and L
is lower-triangular with a positive diagonal. With T the identity, q is a full-rank
Gaussian, so every flow contains that family; and the last, linear layer gives q any
location, scale and correlation, which a spline flow alone cannot reach (a
rational-quadratic spline maps [−B, B] onto itself and is the identity outside, so
its conditional shifts are bounded by the interval).

That bound matters for fitting, not only for reach. In a pure spline flow (``nsf``)
every linear dependence between coordinates must be learned by the one last layer,
and Adam learns a Cholesky factor slowly: on the correlated 10-d ``gaussian`` target
(ρ = 0.9, 2000 steps of 16 draws) full-rank ADVI at the flow's learning rate ends at
ELBO −0.2 and ``nsf`` at −0.12, while ``iaf``, whose every layer regresses each
coordinate on the earlier ones, reaches −0.035. ``nsf_affine`` follows each layer's
spline by an affine map from the same conditioner (a layer maps x to
y_i = μ_i + σ_i s_i(x_i), with μ_i, σ_i and the spline s_i functions of x_<i): the
splines shape the density (separate modes, which affine layers cannot carve), the
affine maps carry the linear structure as in ``iaf``; it reaches −0.057 there, and
−0.065 under annealing, where ``nsf`` falls to −0.31 (methods/flows.py).

flowjax flows are equinox modules. ``eqx.partition`` splits one into its trainable
float arrays (the approximation's ``params``) and its static rest: functions, shapes,
integer permutations, boolean autoregressive masks, and closures that hold arrays
(flowjax's transformer constructors). That rest is rebuilt from a fixed key wherever
it is needed (:meth:`Flow.structure`), so no concrete array is cached across traces and
the family stays a small hashable value. The trainable weights are drawn from the
fitting key; permutations and masks are the same for every fit.

The rebuild runs eagerly, outside any trace (:func:`_untraced`), and
so does the initial last layer, whose constant diagonal flowjax passes through
``inv_softplus``. flowjax checks its inputs with ``eqx.error_if`` (a valid
permutation, a positive scale): on concrete values equinox settles the check at
once, but on traced ones it stages a host callback into the program, and JAX never
writes a program with a host callback to its persistent compilation cache, so a
traced rebuild made every flow fit compile again in each process. The permutations
and masks now enter the fit's program as constants; its arithmetic is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import paramax
from flowjax.bijections import Affine, Chain, RationalQuadraticSpline, TriangularAffine
from flowjax.distributions import StandardNormal, Transformed
from flowjax.flows import coupling_flow, masked_autoregressive_flow
from paramax.utils import inv_softplus

from vibench.core import Array, Reference

FLOW_KINDS = ("realnvp", "iaf", "nsf", "nsf_affine")
STRUCTURE_SEED = 0
MIN_SCALE = 1e-2


def _affine_transformer() -> Affine:
    """An elementwise affine map started at the identity, its scale softplus(·) + MIN_SCALE
    (the transformer flowjax's own ``iaf`` layers use)."""
    scale = paramax.Parameterize(
        lambda x: jax.nn.softplus(x) + MIN_SCALE, inv_softplus(jnp.asarray(1 - MIN_SCALE))
    )
    return eqx.tree_at(lambda affine: affine.scale, Affine(), scale)


def _untraced(fn: Callable, *args):
    """``fn(*args)`` evaluated with concrete arrays even when called inside a trace.

    JAX's trace state is per thread, so a fresh thread runs ``fn`` eagerly (JAX's
    global settings, such as the precision, hold there too). ``jax.ensure_compile_time_eval``
    would be the in-thread way, but equinox's checks fail under it.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def _partition(flow: Transformed):
    """``(trainable float arrays, static rest)``, as flowjax's own training splits a flow."""
    return eqx.partition(
        flow, eqx.is_inexact_array, is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable)
    )


@dataclass(frozen=True)
class Flow:
    """A normalizing flow on R^dim (static half; the trainable arrays are ``params``).

    kind: ``realnvp`` (affine coupling layers, Dinh et al. 2017), ``iaf`` (affine
    inverse autoregressive layers, Kingma et al. 2016), ``nsf`` (rational-quadratic
    spline autoregressive layers, Durkan et al. 2019, with ``knots`` bins on
    [−interval, interval]) or ``nsf_affine`` (each autoregressive layer a spline then
    an affine map, both from one conditioner); layers: flow layers; hidden, depth:
    width and number of hidden layers of each layer's conditioner network.
    """

    kind: Literal["realnvp", "iaf", "nsf", "nsf_affine"]
    dim: int
    layers: int = 4
    hidden: int = 32
    depth: int = 1
    knots: int = 8
    interval: float = 4.0
    name: str = "flow"
    has_density: bool = True

    def __post_init__(self):
        if self.kind not in FLOW_KINDS:
            raise ValueError(f"unknown flow kind {self.kind!r}; valid: {', '.join(FLOW_KINDS)}")
        if self.kind == "realnvp" and self.dim < 2:
            raise ValueError("a coupling flow (realnvp) needs dim >= 2")

    def build(self, key: jax.Array) -> Transformed:
        """The whole flowjax distribution, network weights drawn from ``key``."""
        base = StandardNormal((self.dim,))
        options = {
            "base_dist": base,
            "flow_layers": self.layers,
            "nn_width": self.hidden,
            "nn_depth": self.depth,
            "invert": False,  # every layer in the sampling direction
        }
        if self.kind == "realnvp":
            flow = coupling_flow(key, **options)
        elif self.kind == "iaf":
            flow = masked_autoregressive_flow(key, **options)
        else:
            transformer = RationalQuadraticSpline(knots=self.knots, interval=self.interval)
            if self.kind == "nsf_affine":
                transformer = Chain([transformer, _affine_transformer()])
            flow = masked_autoregressive_flow(key, transformer=transformer, **options)
        linear = TriangularAffine(jnp.zeros(self.dim), jnp.eye(self.dim))
        return Transformed(base, Chain([flow.bijection, linear]))

    def init(self, key: jax.Array, loc: Array, scale: float):
        """Trainable arrays: weights drawn from ``key``; the last layer z = loc + scale · T(ε)."""
        start = _untraced(_scaled_affine, self.dim, scale)
        start = eqx.tree_at(lambda affine: affine.loc, start, jnp.broadcast_to(loc, (self.dim,)))
        flow = eqx.tree_at(lambda q: q.bijection.bijections[-1], self.build(key), start)
        return _partition(flow)[0]

    def structure(self):
        """The static half of the flow, built from a fixed key (concrete arrays)."""
        return _untraced(_structure, self)

    def distribution(self, params) -> Transformed:
        """The flowjax distribution with trainable arrays ``params``."""
        return eqx.combine(params, self.structure())

    def sample(self, params, key, n):
        return self.distribution(params).sample(key, (n,))

    def log_prob(self, params, z):
        return self.distribution(params).log_prob(z)

    def gaussian(self, params):
        return None

    def best_elbo(self, reference: Reference) -> float | None:
        """Unknown for a flow."""
        return None

    def valid_draws(self, params) -> None:
        """A density family stores no draws."""
        return None

    def sample_and_log_prob(self, params, key, n):
        return self.distribution(params).sample_and_log_prob(key, (n,))


def _structure(flow: Flow):
    return _partition(flow.build(jax.random.key(STRUCTURE_SEED)))[1]


def _scaled_affine(dim: int, scale: float) -> TriangularAffine:
    """z = scale · x as a flowjax layer (its diagonal through ``inv_softplus``)."""
    return TriangularAffine(jnp.zeros(dim), scale * jnp.eye(dim))
