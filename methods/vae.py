"""VAE and IWAE: a deep generative model and its amortized posterior fitted together on a
lower bound of log p_θ(x) (Kingma & Welling 2014; Burda, Grosse & Salakhutdinov 2016).

For tasks declaring a deep generative model (:class:`vibench.structure.generative.DeepGenerative`,
e.g. ``mnist``). Per image x and K draws z_k = μ_φ(x) + σ_φ(x) ε_k from the encoder,
w_k = p_θ(x | z_k) p(z_k) / q_φ(z_k | x); ``objective=elbo`` maximizes (1/K) Σ_k log w_k
(the VAE; K = 1 is Kingma & Welling's estimator), ``objective=iwae`` the importance-weighted
bound log (1/K) Σ_k w_k (IWAE), both over θ and φ. ``dreg=true`` gives the encoder the
doubly-reparameterized gradient Σ_k w̃_k² ∂log w_k/∂z_k ∂z_k/∂φ (Tucker et al. 2019;
w̃ the normalized weights; for the ELBO it is sticking-the-landing), the decoder its
usual Σ_k w̃_k ∂log w_k/∂θ. (:mod:`vibench.methods.iwae` is the importance-weighted
bound for a fixed target, with no decoder.)

Defaults are Burda et al.'s: one stochastic layer of ``latents`` = 50 units, ``layers`` = 2
deterministic tanh layers of ``hidden`` = 200 units in encoder and decoder, Bernoulli
pixels, Glorot-uniform weights (the decoder's output bias at the logit of each pixel's
mean), batches of 20, Adam (β = 0.9, 0.999, ε = 10⁻⁴) with their schedule
(``schedule=burda``: 3^i epochs at learning rate ``lr``·10^(−i/7), i = 0 … 7; 3 280
epochs in all; a shorter run follows its beginning). Each epoch visits the training
images in a random order (the last partial batch dropped); with a task's grey levels
(dynamic binarization) the pixels are re-sampled every epoch.

``backend=jax``: one compiled epoch (``lax.scan`` over the minibatches, the data on the
device once), called once per epoch. ``backend=torch``: the same model, initialization
scheme, optimizer, schedule and data order in PyTorch, eager or with ``compile=true``
(``torch.compile``); it needs the ``torch`` extra (``pip install 'vibench[torch]'``),
without which ``backend=torch`` is refused when the SPEC is read. Either backend returns
its weights as JAX arrays, and the harness scores them with the same estimators
(:mod:`vibench.metrics.generative`: test log p(x) ± se, test ELBO, k-hat, active units).
Diagnostics: ``time_compile_s`` (JAX's epoch compile, included in ``time_fit_s``),
``epoch_time_s`` (mean wall-clock of an epoch after the first), ``train_bound`` (the
last epoch's mean bound). Cost: ``grad_evals`` counts epochs × K (full-data passes,
each draw one).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, Method
from vibench.spec import Range

VERSION = "1"
TORCH_HINT = "pip install 'vibench[torch]' (torch==2.13.0)"


def torch_available() -> bool:
    """Whether PyTorch can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class VAEConfig:
    """k: draws per image per step (K); objective: elbo (VAE) or iwae (importance-weighted
    bound); dreg: doubly-reparameterized encoder gradients; epochs: passes over the
    training images; batch_size: images per step; schedule: burda (3^i epochs at
    lr·10^(−i/7)) or constant; lr: the first learning rate; latents: stochastic units;
    hidden: units per deterministic layer; layers: deterministic tanh layers in encoder
    and decoder; backend: jax, or torch (needs the torch extra); compile: torch.compile
    the torch backend's forward pass."""

    k: Annotated[int, Range(1, 10**4)] = 1
    objective: Literal["elbo", "iwae"] = "elbo"
    dreg: bool = False
    epochs: Annotated[int, Range(1, 10**5)] = 10
    batch_size: Annotated[int, Range(1, 10**5)] = 20
    schedule: Literal["burda", "constant"] = "burda"
    lr: Annotated[float, Range(0, 1, low_open=True)] = 1e-3
    latents: Annotated[int, Range(1, 10**4)] = 50
    hidden: Annotated[int, Range(1, 10**5)] = 200
    layers: Annotated[int, Range(1, 16)] = 2
    backend: Literal["jax", "torch"] = "jax"
    compile: bool = False

    def check(self) -> None:
        """backend=torch needs PyTorch; compile is the torch backend's; k * batch_size <= 10^6."""
        if self.backend == "torch" and not torch_available():
            raise ValueError(f"parameter backend=torch needs PyTorch, which is not installed: {TORCH_HINT}")
        if self.compile and self.backend != "torch":
            raise ValueError("parameter compile=true applies to backend=torch only")
        if self.k * self.batch_size > 10**6:
            raise ValueError(f"parameters k, batch_size must satisfy k * batch_size <= 10^6 (draws per step); "
                             f"got {self.k * self.batch_size}")


vae = Method(
    name="vae",
    version=VERSION,
    Config=VAEConfig,
    fit=Deferred("vibench.methods._vae:fit"),
    supports=Deferred("vibench.methods._vae:supports"),
    jittable=False,
    doc=__doc__,
)
