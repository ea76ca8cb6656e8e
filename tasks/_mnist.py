"""The computation of :mod:`vibench.tasks.mnist` (declared there, with its parameters), and
:func:`generative_task`, the task of any binary image set (the synthetic sets of tests)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from vibench.core import Array, Data, ModelFn, Reference, Task
from vibench.data import mnist as mnist_data
from vibench.families.generative import Architecture, init_params, mlp
from vibench.spec import canonical_label
from vibench.structure.generative import DeepGenerative
from vibench.tasks.mnist import PUBLISHED, VERSION, MNISTParams

DEFAULT_ARCHITECTURE = Architecture(pixels=mnist_data.PIXELS, latents=50, hidden=(200, 200))
"""Burda et al.'s one-stochastic-layer model: 784-200-200-50 (tanh), decoder mirrored."""


def model_of(arch: Architecture, decoder: list[dict[str, Array]]) -> ModelFn:
    """z_n ~ N(0, I), x_n ~ Bernoulli(σ(f_θ(z_n))); θ a ``numpyro.param`` starting at ``decoder``."""

    def model(data: Data) -> None:
        theta = numpyro.param("decoder", decoder)
        n = data["x"].shape[0]
        z = numpyro.sample("z", dist.Normal(jnp.zeros((n, arch.latents)), 1.0).to_event(2))
        numpyro.sample("x", dist.Bernoulli(logits=mlp(theta, z)).to_event(2), obs=data["x"])

    return model


def generative_task(
    name: str,
    label: str,
    train: np.ndarray,
    test: np.ndarray,
    arch: Architecture,
    eval_k: int,
    grey: np.ndarray | None = None,
    tags: frozenset[str] = frozenset(),
    published: tuple = (),
    version: str = VERSION,
) -> Task:
    """The task of modelling binary images ``train`` (n, pixels), scored on ``test``."""
    x = jnp.asarray(train, jnp.float32)
    decoder = init_params(arch, jax.random.key(0), x.mean(0))["decoder"]
    model = model_of(arch, decoder)

    def simulate(key):
        key_z, key_x = jax.random.split(key)
        z = jax.random.normal(key_z, (x.shape[0], arch.latents))
        return {"z": z}, {"x": jax.random.bernoulli(key_x, jax.nn.sigmoid(mlp(decoder, z))).astype(jnp.float32)}

    extension = DeepGenerative(
        train_key="x",
        test=jnp.asarray(test, jnp.float32),
        pixels=arch.pixels,
        grey=None if grey is None else jnp.asarray(grey, jnp.float32),
        eval_k=eval_k,
        published=published,
    )
    reference = Reference(
        provenance="none: a deep generative model is scored on its held-out test images "
        "(vibench.metrics.generative), not against a posterior"
    )
    return Task(
        name=name,
        label=label,
        version=version,
        tags=frozenset({"amortized", "generative", "minibatch", *tags}),
        model=model,
        data={"x": x},
        reference=reference,
        simulate=simulate,
        held_out={"x": extension.test},
        extensions=(extension,),
    )


def random_rows(n_rows: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct rows of ``n_rows``, in random order (all of them, shuffled, when equal)."""
    return rng.permutation(n_rows)[:count]


def build(params: MNISTParams, data_dir=None) -> Task:
    train, test = mnist_data.load("train", data_dir), mnist_data.load("test", data_dir)
    rng = np.random.default_rng(params.data_seed)
    train = train[random_rows(len(train), params.subset, rng)]
    test = test[random_rows(len(test), params.n_test, rng)]
    return generative_task(
        "mnist",
        canonical_label("mnist", params),
        train,
        test,
        DEFAULT_ARCHITECTURE,
        params.eval_k,
        tags=frozenset({"real-data"}),
        published=tuple(row for row in PUBLISHED if row.binarization == params.binarization),
    )
