"""Binarized MNIST: an amortized deep generative model (VAE / IWAE) of 28 × 28 binary images.

Larochelle's static binarization and split (train 50 000, valid 10 000, test 10 000;
:mod:`vibench.data.mnist`, files found in ``$VIBENCH_DATA`` or ``~/.cache/vibench`` and
sha256-checked). ``subset`` takes that many training images, chosen at random with
``data_seed``; ``n_test`` test images likewise (the test file is sorted by class, so a
subset is a random one, never the first rows). The model is Burda et al.'s: z_n ~ N(0, I),
x_n | z_n ~ Π_j Bernoulli(σ(f_θ(z_n))_j) with a decoder f_θ that the method fits (the
task's NumPyro model holds it as a ``numpyro.param`` at its initial value). Methods with
a deep-generative-model family (``vae``) are scored on the test images by
:mod:`vibench.metrics.generative`: test log p(x) by importance sampling with ``eval_k``
draws per image (5000, Burda et al.'s K), test ELBO, active units and k-hat.

``binarization=dynamic`` (re-sampling every pixel from its grey level each epoch, the
protocol of Burda et al.'s Table 1) needs grey levels; the Larochelle files have none,
so this task refuses it with a message saying so. :data:`PUBLISHED` holds Burda et al.
(2016)'s test log-likelihoods, each with its training budget (3 280 epochs): a short
vibench run is no replication of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, TaskFamily
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class PublishedRow:
    """A published test log p(x) (nats per image) and how it was obtained.

    ``approximate``: the paper gives the number only roughly (read off, "about")."""

    method: str
    k: int
    binarization: str
    test_log_px: float
    epochs: int
    source: str
    approximate: bool = False


_BURDA = "Burda, Grosse & Salakhutdinov (2016), one stochastic layer (50 units), 2 x 200 tanh"
PUBLISHED: tuple[PublishedRow, ...] = (
    PublishedRow("vae", 1, "dynamic", -86.76, 3280, f"{_BURDA}, Table 1"),
    PublishedRow("iwae", 5, "dynamic", -85.54, 3280, f"{_BURDA}, Table 1"),
    PublishedRow("iwae", 50, "dynamic", -84.78, 3280, f"{_BURDA}, Table 1"),
    PublishedRow("vae", 1, "static", -88.7, 3280, f"{_BURDA}, Appendix D", approximate=True),
    PublishedRow("iwae", 5, "static", -87.6, 3280, f"{_BURDA}, Appendix D", approximate=True),
    PublishedRow("iwae", 50, "static", -87.1, 3280, f"{_BURDA}, Appendix D", approximate=True),
)
"""Published reference rows: never measured here, marked with their training budget."""


@dataclass(frozen=True)
class MNISTParams:
    """subset: training images used (random, with data_seed); binarization: static (the
    files' own) or dynamic (needs grey levels, which the files lack: refused); n_test:
    test images scored (random, with data_seed); eval_k: importance samples per test
    image for log p(x); data_seed: seed of the subsets."""

    subset: Annotated[int, Range(1, 50_000)] = 50_000
    binarization: Literal["static", "dynamic"] = "static"
    n_test: Annotated[int, Range(1, 10_000)] = 10_000
    eval_k: Annotated[int, Range(1, 10**5)] = 5000
    data_seed: Annotated[int, Range(0, 2**32 - 1)] = 0

    def check(self) -> None:
        """Dynamic binarization needs grey levels the binarized files do not hold."""
        if self.binarization == "dynamic":
            raise ValueError(
                "parameter binarization=dynamic needs MNIST grey levels, which the binarized MNIST files "
                "(Larochelle's static binarization) do not hold; valid here: static"
            )


mnist = TaskFamily(name="mnist", version=VERSION, Params=MNISTParams, build=Deferred("vibench.tasks._mnist:build"),
                   doc=__doc__)
