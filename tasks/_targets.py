"""The computation of :mod:`vibench.tasks.targets` (declared there, with its parameters)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from vibench.core import Array, Data, ModelFn, Reference, SimulateFn, Task
from vibench.structure.modes import Modes
from vibench.tasks.targets import (
    VERSION,
    BananaParams,
    FunnelParams,
    MixtureParams,
    StudentTParams,
)

SYNTHETIC = frozenset({"exact", "synthetic"})


def _target_task(
    name: str,
    tags: set[str],
    model: ModelFn,
    reference: Reference,
    simulate: SimulateFn,
    extensions: tuple[Any, ...] = (),
) -> Task:
    return Task(
        name=name,
        label=name,
        version=VERSION,
        tags=SYNTHETIC | tags,
        model=model,
        data={},
        reference=reference,
        simulate=simulate,
        extensions=extensions,
    )


def _single_site_task(
    name: str,
    tags: set[str],
    target: dist.Distribution,
    reference: Reference,
    extensions: tuple[Any, ...] = (),
) -> Task:
    """A task whose model is one vector site ``z`` drawn from ``target``."""

    def model(data: Data) -> None:
        numpyro.sample("z", target)

    def simulate(key: jax.Array) -> tuple[dict[str, Array], Data]:
        return {"z": target.sample(key)}, {}

    return _target_task(name, tags, model, reference, simulate, extensions)


def build_student_t(p: StudentTParams) -> Task:
    scale = (1 - p.rho) * jnp.eye(p.dim) + p.rho * jnp.ones((p.dim, p.dim))
    target = dist.MultivariateStudentT(p.df, jnp.zeros(p.dim), jnp.linalg.cholesky(scale))
    reference = Reference(
        provenance="closed form: multivariate Student-t; mean 0 for df > 1, "
        "sd sqrt(df/(df-2)) for df > 2 (unit-diagonal scale matrix)",
        log_evidence=0.0,
        mean=jnp.zeros(p.dim) if p.df > 1 else None,
        std=jnp.full(p.dim, math.sqrt(p.df / (p.df - 2))) if p.df > 2 else None,
        sample=lambda key, n: target.sample(key, (n,)),
        log_prob=target.log_prob,
    )
    return _single_site_task("student_t", {"heavy-tailed", "correlated"}, target, reference)


def build_funnel(p: FunnelParams) -> Task:
    n_x = p.dim - 1

    def model(data: Data) -> None:
        v = numpyro.sample("v", dist.Normal(0.0, p.v_scale))
        numpyro.sample("x", dist.Normal(0.0, jnp.exp(v / 2)).expand([n_x]).to_event(1))

    def draw(key: jax.Array, n: int) -> Array:
        """Draws in the flat order (v, x_1, ..., x_{dim-1})."""
        eps = jax.random.normal(key, (n, p.dim))
        v = p.v_scale * eps[:, :1]
        return jnp.concatenate([v, jnp.exp(v / 2) * eps[:, 1:]], axis=1)

    def log_prob(z: Array) -> Array:
        v, x = z[0], z[1:]
        return (
            dist.Normal(0.0, p.v_scale).log_prob(v)
            + dist.Normal(0.0, jnp.exp(v / 2)).log_prob(x).sum()
        )

    def simulate(key: jax.Array) -> tuple[dict[str, Array], Data]:
        z = draw(key, 1)[0]
        return {"v": z[0], "x": z[1:]}, {}

    x_sd = math.exp(p.v_scale**2 / 4)  # sqrt(E[e^v]), v ~ N(0, s^2)
    reference = Reference(
        provenance="closed form: v ~ N(0, s^2), x_i|v ~ N(0, e^v); E[x_i] = 0, "
        "Var(x_i) = E[e^v] = exp(s^2/2) (Neal 2003)",
        log_evidence=0.0,
        mean=jnp.zeros(p.dim),
        std=jnp.concatenate([jnp.array([p.v_scale]), jnp.full(n_x, x_sd)]),
        sample=draw,
        log_prob=log_prob,
    )
    return _target_task("funnel", {"funnel", "hierarchical"}, model, reference, simulate)


def mixture_centers(n_modes: int, separation: float, dim: int) -> Array:
    """(n_modes, dim) centers ``separation`` apart from their neighbours: evenly spaced
    on a ring in the plane of the first two coordinates, or on a line when dim = 1."""
    if dim == 1:
        return ((jnp.arange(n_modes) - (n_modes - 1) / 2) * separation)[:, None]
    radius = separation / (2 * math.sin(math.pi / n_modes))
    angle = 2 * jnp.pi * jnp.arange(n_modes) / n_modes
    ring = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
    return jnp.pad(ring, ((0, 0), (0, dim - 2)))


def draw_mixture(key: jax.Array, n: int, centers: Array, weights: Array) -> tuple[Array, Array]:
    """``(labels, z)``: n draws from the unit-sd mixture and the component of each."""
    key_label, key_noise = jax.random.split(key)
    labels = jax.random.categorical(key_label, jnp.log(weights), shape=(n,))
    return labels, centers[labels] + jax.random.normal(key_noise, (n, centers.shape[1]))


def build_mixture(p: MixtureParams) -> Task:
    centers = mixture_centers(p.n_modes, p.separation, p.dim)
    weights = jnp.full(p.n_modes, 1.0 / p.n_modes)
    target = dist.MixtureSameFamily(
        dist.Categorical(probs=weights), dist.Normal(centers, 1.0).to_event(1)
    )
    mean = weights @ centers
    reference = Reference(
        provenance="closed form: equally weighted mixture of N(c_k, I); mean sum_k w_k c_k, "
        "variance 1 + sum_k w_k (c_k - mean)^2 (law of total variance)",
        log_evidence=0.0,
        mean=mean,
        std=jnp.sqrt(1.0 + weights @ (centers - mean) ** 2),
        sample=lambda key, n: draw_mixture(key, n, centers, weights)[1],
        log_prob=target.log_prob,
    )
    modes = Modes(centers=centers, weights=weights, scales=jnp.ones(p.n_modes))
    return _single_site_task("mixture", {"multimodal"}, target, reference, extensions=(modes,))


class TwistedGaussian(dist.Distribution):
    """y = φ(x), x ~ N(0, diag(100, 1, ..., 1)), φ(x)₂ = x₂ + b(x₁² − 100) (Haario et al. 1999).

    φ is volume-preserving (a shear of x₂ by a function of x₁), so
    log p(y) = log N(φ⁻¹(y); 0, diag(100, 1, ..., 1)), exactly normalized.
    """

    arg_constraints: ClassVar[dict] = {"twist": constraints.real}
    support = constraints.real_vector
    pytree_data_fields = ("twist",)

    def __init__(self, twist: float, dim: int, *, validate_args: bool | None = None):
        self.twist = jnp.asarray(twist, dtype=jnp.result_type(float))
        super().__init__(batch_shape=(), event_shape=(dim,), validate_args=validate_args)

    def _scales(self) -> Array:
        return jnp.ones(self.event_shape).at[0].set(10.0)

    def _shift(self, y1: Array) -> Array:
        return self.twist * (y1**2 - 100.0)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> Array:
        x = self._scales() * jax.random.normal(key, sample_shape + self.event_shape)
        return x.at[..., 1].add(self._shift(x[..., 0]))

    def log_prob(self, value: Array) -> Array:
        x = value.at[..., 1].add(-self._shift(value[..., 0]))
        return dist.Normal(0.0, self._scales()).log_prob(x).sum(-1)


def build_banana(p: BananaParams) -> Task:
    target = TwistedGaussian(p.twist, p.dim)
    std = jnp.ones(p.dim).at[0].set(10.0).at[1].set(math.sqrt(1 + 2 * 100.0**2 * p.twist**2))
    reference = Reference(
        provenance="closed form: volume-preserving twist of N(0, diag(100,1,...)); E[y] = 0, "
        "Var(y2) = 1 + b^2 Var(x1^2) = 1 + 2 b^2 100^2 (Haario et al. 1999)",
        log_evidence=0.0,
        mean=jnp.zeros(p.dim),
        std=std,
        sample=lambda key, n: target.sample(key, (n,)),
        log_prob=target.log_prob,
    )
    return _single_site_task("banana", {"curved"}, target, reference)
