"""The typed task extension of an amortized deep generative model (a VAE's task).

A task declaring :class:`DeepGenerative` is a data set to be modelled, not a posterior
with fixed parameters: a method fits both a decoder p_θ(x | z) (by maximum likelihood on
a lower bound of log p_θ(x)) and an encoder q_φ(z | x), and is scored by what the fitted
model does on the held-out test images (:mod:`vibench.metrics.generative`): its test
log p(x) by importance sampling, test ELBO, active units and k-hat per image. The
task's NumPyro model is the generative model with the decoder as a ``numpyro.param``
(its log density is that of the initial decoder, which no posterior metric uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from vibench.core import Array

Likelihood = Literal["bernoulli"]


@dataclass(frozen=True, eq=False)
class DeepGenerative:
    """An amortized deep generative model's data and how it is scored.

    ``train_key``: the data leaf of the training images (n, pixels), values in {0, 1};
    ``test``: the test images (n_test, pixels); ``likelihood``: the decoder's family
    (``bernoulli``: one independent Bernoulli per pixel); ``grey``: grey levels in [0, 1]
    of the training images for dynamic binarization (each epoch re-samples the pixels
    x ~ Bernoulli(grey)), or ``None`` where the data carry none (static binarization
    only); ``eval_k``: importance samples per test image for log p(x); ``published``:
    reference rows from the literature (:class:`PublishedRow`), shown beside runs.
    """

    train_key: str
    test: Array
    pixels: int
    likelihood: Likelihood = "bernoulli"
    grey: Array | None = None
    eval_k: int = 5000
    published: tuple[Any, ...] = ()

    @property
    def dynamic(self) -> bool:
        return self.grey is not None
