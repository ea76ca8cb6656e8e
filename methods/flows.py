"""Normalizing-flow VI: a flowjax flow q trained on the ELBO (Rezende & Mohamed 2015).

q is a :class:`vibench.flow_family.Flow` (affine coupling, inverse autoregressive,
rational-quadratic spline autoregressive, or spline-then-affine autoregressive
layers, then a lower-triangular linear layer started at the task's initial point
with scale ``init_scale``; so q contains the full-rank Gaussians). Each step draws
``num_samples`` points of q, with log q from the same forward pass that made them,
and takes the pathwise gradient of

    E_q[β_t log p(x, z) − log q(z)],

with an optax optimizer under ``lax.scan``. Without annealing (``anneal=0``, the
default) β_t = 1 and this is the ELBO. With it, β_t rises geometrically from ``beta0``
to 1 over the first ``anneal`` fraction of the steps and is 1 afterwards, so the run
ends on the ELBO itself. The trace is always the ELBO E_q[log p − log q] of each
step's draws at β = 1, whatever β_t was: one quantity along the run, comparable with
other methods' traces.

Separated modes (measured on ``mixture``: four unit-sd modes 10 sds apart on a ring
of radius 7.1; 16 seeds, mean mode coverage / ELBO; mean-field ADVI 0.23 / −5.2).
Reverse KL is mode-seeking, and a flow started as N(init, init_scale²) near one mode
falls into it: unannealed, ``nsf`` ends on one mode on every seed (0.25 / −1.39 =
log ¼; seed 0 held 96% of its draws in one mode over its first 100 steps), ``iaf``
0.30 / −1.30, ``nsf_affine`` 0.30 / −1.27, and a broad start does not help
(``nsf_affine``, ``init_scale=5``: 0.31 / −1.20). Tempering p by β lowers the
barriers between the modes from about 12 nats to β · 12, so q first spreads over all
of them and splits as β rises (Rezende & Mohamed 2015, §6, with β_t = min(1,
0.01 + t/10⁴)). Annealed over 0.75 of the run: ``nsf`` 0.80 / −0.46, ``nsf_affine``
0.66 / −0.57. Affine flows cannot separate the modes: annealed, ``iaf`` and
``realnvp`` reach 0.55 and 0.56 by spreading q over them, at ELBO −2.1, worse than one
mode (annealed over three times the steps ``iaf`` reaches −1.4, with eight layers
−1.2, 8 seeds), so their reverse-KL optimum is a single mode.

The ramp is geometric, as tempering ladders are: q starts narrow and widens slowly
(seed 0: its sd grows from 2 to 5 over 400 steps), and a linear ramp from 0.01 is at
β = 0.08 after 100 steps, barriers back near a nat before q has spread; on the
geometric ramp β stays below 0.05 for a third of it (``nsf``: coverage 0.69 linear,
0.88 geometric, 8 seeds). The ramp's length trades coverage for fit: ``nsf``
annealed over 0.5, 0.75 and all of the run covers 0.56, 0.80, 0.95 of the modes at
ELBO −0.69, −0.46, −1.04 (q needs a slow passage through the split, then steps at
β = 1 to fit p). What annealing leaves is q's split of mass among the modes: once
they part, the ELBO depends on it only to second order (a mismatch δ costs about
½ Σ δ²/w nats: 0.04 for one mode at half its weight), and moving mass between modes
means moving q's boundaries through regions it puts no draws in, so the shares q has
when the modes part largely stay (four times the draws per step: coverage 0.73
against 0.66, ``nsf_affine``).

Why annealing is off by default. Tempering the whole joint makes p^β improper for
heavy tails: for ``student_t`` (ν = 2, d = 5) ∫ p^β is infinite for β ≤ d / (ν + d)
= 5/7, and annealed there ``iaf`` grows without bound (draws at 10²⁹, ELBO −inf) and
``nsf`` ends at ELBO −0.91 (−0.13 unannealed; 4 seeds); on ``funnel`` annealed ``iaf``
ends at ELBO −25 (seed 0; −0.17 unannealed), ``nsf`` at −3.7 (−0.65). Turn it on for
targets with separated modes (``flow[kind=nsf,anneal=0.75]``). On ``gaussian`` (10-d,
ρ = 0.9; 8 seeds) it costs the pure spline flow its fit (``nsf`` ELBO −0.31 against
−0.12; mean and sd errors ≤ 0.07) but not ``iaf`` (−0.029 against −0.035) or
``nsf_affine`` (−0.065 against −0.057; errors ≤ 0.04): see vibench/flow_family.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vibench.declarations import Deferred, Method
from vibench.spec import Range

VERSION = "1"


@dataclass(frozen=True)
class FlowConfig:
    """kind: ``realnvp`` (affine coupling), ``iaf`` (affine inverse autoregressive),
    ``nsf`` (rational-quadratic spline autoregressive) or ``nsf_affine`` (a spline then
    an affine map per autoregressive layer); layers: flow layers; hidden, depth: width
    and hidden layers of each conditioner network; knots, interval: spline bins and the
    interval [−interval, interval] they cover (spline kinds only); steps: optimizer
    steps; num_samples: draws per ELBO estimate; optimizer, lr, schedule: as in ADVI;
    init_scale: the last layer's initial scale (Stan's ADVI starts at 1); anneal: the
    fraction of the steps over which β rises from ``beta0`` to 1 (0: no annealing);
    beta0: the first β (Rezende & Mohamed 2015: 0.01)."""

    kind: Literal["realnvp", "iaf", "nsf", "nsf_affine"] = "iaf"
    layers: Annotated[int, Range(1, 64)] = 4
    hidden: Annotated[int, Range(1, 4096)] = 32
    depth: Annotated[int, Range(1, 16)] = 1
    knots: Annotated[int, Range(1, 256)] = 8
    interval: Annotated[float, Range(0, 1000, low_open=True)] = 4.0
    steps: Annotated[int, Range(1, 10**7)] = 2000
    num_samples: Annotated[int, Range(1, 10**5)] = 16
    optimizer: Literal["adam", "adamw", "adabelief", "rmsprop", "sgd"] = "adam"
    lr: Annotated[float, Range(0, 100, low_open=True)] = 0.005
    schedule: Literal["cosine", "constant"] = "cosine"
    init_scale: Annotated[float, Range(0, 1000, low_open=True)] = 1.0
    anneal: Annotated[float, Range(0, 1)] = 0.0
    beta0: Annotated[float, Range(0, 1, low_open=True)] = 0.01


flow = Method(
    name="flow",
    version=VERSION,
    Config=FlowConfig,
    fit=Deferred("vibench.methods._flows:fit"),
    budget=Deferred("vibench.methods._advi:budget"),
    doc=__doc__,
)
