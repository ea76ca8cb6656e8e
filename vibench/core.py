"""Core types of vibench: tasks, references, log densities, methods, approximations.

Types only. A task owns its mathematics (model, data, ground truth); a method owns
its algorithm; the harness (runner, metrics, store) owns everything else. What a task
family or a method *declares* (name, parameters, where its code is) lives apart, in
:mod:`vibench.declarations`, which imports no JAX.

Conventions: ``Data`` is a pytree of arrays (a dict); ``z`` is a point of the flat,
unconstrained latent space of the task's :class:`LogDensity`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, TypeVar

import jax

Array = jax.Array
Data = dict[str, Any]
PRNGKey = jax.Array
T = TypeVar("T")
C = TypeVar("C")


# --------------------------------------------------------------------- protocols
class ModelFn(Protocol):
    """A NumPyro model ``model(data)``: the one source of truth for the joint density."""

    def __call__(self, data: Data) -> None: ...


class SimulateFn(Protocol):
    """``simulate(key) -> (params, data)``: true latent values (constrained, by site) and data."""

    def __call__(self, key: PRNGKey) -> tuple[dict[str, Array], Data]: ...


class SampleFn(Protocol):
    """``sample(key, n) -> (n, dim)`` draws in the flat unconstrained space."""

    def __call__(self, key: PRNGKey, n: int) -> Array: ...


class LogProbFn(Protocol):
    """``log_prob(z) -> scalar`` for one point ``z`` of shape ``(dim,)``."""

    def __call__(self, z: Array) -> Array: ...


class LogJointFn(Protocol):
    """``logp(z, data) -> scalar``: log joint at unconstrained ``z``, log-Jacobian included."""

    def __call__(self, z: Array, data: Data) -> Array: ...


class FitFn(Protocol[C]):
    """``fit(task, logdensity, data, key, config) -> Approximation``.

    Pure JAX for methods with ``jittable=True``: the harness ``jit``s it (``task``,
    ``logdensity`` and ``config`` static) and may ``vmap`` it over ``data`` and ``key``.
    A method must read observations from ``data``, never from ``task.data``.
    """

    def __call__(
        self, task: Task, logdensity: LogDensity, data: Data, key: PRNGKey, config: C
    ) -> Approximation: ...


class SupportsFn(Protocol):
    """``supports(task) -> (ok, reason)``; ``reason`` says why not when ``ok`` is false."""

    def __call__(self, task: Task) -> tuple[bool, str]: ...



class BudgetFn(Protocol[C]):
    """``budget(config, grad_evals, task) -> config`` spending at most ``grad_evals``
    gradient evaluations of the log joint on ``task`` (the method's own cost model; the
    harness records the evaluations actually spent)."""

    def __call__(self, config: C, grad_evals: int, task: Task) -> C: ...



class BuildFn(Protocol[C]):
    """``build(params) -> Task`` for a task family's frozen parameter dataclass."""

    def __call__(self, params: C) -> Task: ...


# --------------------------------------------------------------------- tasks
@dataclass(frozen=True, eq=False)
class Reference:
    """Ground truth for a task, in the flat unconstrained space, and how it was obtained.

    Exact fields have no standard error; Monte Carlo ones carry theirs (``*_se``).
    ``gaussian`` is set when the posterior is exactly Gaussian, as ``(mean, cov)``;
    ``blocks`` instead when it is a product of independent Gaussian blocks (local
    latents), as a :class:`vibench.structure.conjugate.BlockPosterior` (no dense cov).
    ``meanfield_elbo`` is the best ELBO a factorized Gaussian can reach, when known.
    """

    provenance: str
    log_evidence: float | None = None
    mean: Array | None = None
    std: Array | None = None
    mean_se: Array | None = None
    std_se: Array | None = None
    sample: SampleFn | None = None
    log_prob: LogProbFn | None = None
    gaussian: tuple[Array, Array] | None = None
    blocks: Any = None
    meanfield_elbo: float | None = None

    @property
    def exact(self) -> bool:
        return self.mean_se is None and self.std_se is None


@dataclass(frozen=True, eq=False)
class Task:
    """One inference problem: a NumPyro model with data and its ground truth.

    ``extensions`` hold optional, typed model structure that some methods need
    (e.g. :class:`vibench.conjugate.ConjugateGaussian`); look them up with
    :meth:`extension`, never by task name.
    """

    name: str
    label: str
    version: str
    tags: frozenset[str]
    model: ModelFn
    data: Data
    reference: Reference
    simulate: SimulateFn
    held_out: Data | None = None
    extensions: tuple[Any, ...] = ()

    def extension(self, kind: type[T]) -> T | None:
        for ext in self.extensions:
            if isinstance(ext, kind):
                return ext
        return None



@dataclass(frozen=True, eq=False)
class LogDensity:
    """A task's joint density on a flat unconstrained space, derived by the harness.

    ``logp`` is pure in ``(z, data)`` so it can be vmapped over data sets.
    ``constrain(z, data)`` maps back to the model's sites; ``init(key)`` gives a
    starting point drawn uniformly in (-2, 2) per coordinate (Stan's convention).
    """

    logp: LogJointFn
    dim: int
    unflatten: Callable[[Array], dict[str, Array]]
    constrain: Callable[[Array, Data], dict[str, Array]]
    init: Callable[[PRNGKey], Array]
    site_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


# --------------------------------------------------------------------- methods
class Family(Protocol):
    """How an approximation's ``params`` define a distribution (static, hashable)."""

    name: str
    has_density: bool

    def sample(self, params: Any, key: PRNGKey, n: int) -> Array: ...

    def log_prob(self, params: Any, z: Array) -> Array: ...

    def gaussian(self, params: Any) -> tuple[Array, Array] | None: ...

    def best_elbo(self, reference: Reference) -> float | None:
        """The best ELBO this family can reach on a task with ``reference``, when known."""
        ...

    def valid_draws(self, params: Any) -> Any:
        """The real stored draws ``(chains, n, dim)`` of a draws family; ``None`` for a
        density family, which stores none."""
        ...

    def sample_and_log_prob(self, params: Any, key: PRNGKey, n: int) -> tuple[Array, Array]: ...


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Approximation:
    """What a method returns: a distribution (or draws) plus its cost and trace.

    ``trace`` is the objective per step (the ELBO estimate for VI methods);
    ``grad_evals`` counts gradient evaluations of the log joint. A method that
    stops on a convergence test returns ``steps`` (steps taken; ``trace`` is
    NaN-padded past it) and ``converged``; otherwise every step of ``trace`` ran.
    A method whose cap on gradient evaluations can end it early (``--budget``)
    returns ``out_of_budget``, true when the cap did.
    ``diagnostics`` holds method-specific scalars the harness records as metrics
    (e.g. ``grad_variance``). A pytree, so a vmapped fit returns a batch of approximations.
    """

    params: Any
    trace: Array
    grad_evals: Array
    family: Family = field(metadata=dict(static=True))
    objective: str = field(default="elbo", metadata=dict(static=True))
    steps: Array | None = None
    converged: Array | None = None
    out_of_budget: Array | None = None
    diagnostics: dict[str, Array] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return int(self.trace.shape[-1] if self.steps is None else self.steps)

    @property
    def stop_reason(self) -> str:
        """``converged`` (the method's own test passed), ``budget`` (its cap on gradient
        evaluations ended it early) or ``max_steps``."""
        if self.converged is not None and bool(self.converged):
            return "converged"
        if self.out_of_budget is not None and bool(self.out_of_budget):
            return "budget"
        return "max_steps"

    def ran_trace(self) -> Array:
        """The objective over the steps that ran."""
        return self.trace[: self.n_steps]

    @property
    def has_density(self) -> bool:
        return self.family.has_density

    def sample(self, key: PRNGKey, n: int) -> Array:
        return self.family.sample(self.params, key, n)

    def log_prob(self, z: Array) -> Array:
        if not self.family.has_density:
            raise TypeError(f"family {self.family.name!r} has no density")
        return self.family.log_prob(self.params, z)

    def sample_and_log_prob(self, key: PRNGKey, n: int) -> tuple[Array, Array]:
        """Draws and log q at them, computed stably from the noise that made them."""
        if not self.family.has_density:
            raise TypeError(f"family {self.family.name!r} has no density")
        return self.family.sample_and_log_prob(self.params, key, n)

    def gaussian(self) -> tuple[Array, Array] | None:
        return self.family.gaussian(self.params)
