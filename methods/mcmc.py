"""MCMC baselines on the flat log density: NumPyro's HMC (Neal 2011) and NUTS
(Hoffman & Gelman 2014).

Several chains run in lockstep, vectorized (``vmap``), each with NumPyro's window
adaptation of the step size (dual averaging to ``target_accept``) and the mass
matrix during warm-up; the draws after warm-up are the approximation (no density).
The functional ``numpyro.infer.hmc.hmc`` kernel is driven by ``lax.scan``, so the
whole run is one compiled, vmappable function.

- ``hmc``: a fixed number of leapfrog steps per iteration, so its cost is known in
  advance: chains × (1 + iterations × num_steps) gradient evaluations. (The
  trajectory length, num_steps × the adapted step size, follows the adaptation;
  fixing the length instead would make the cost depend on it.)
- ``nuts``: trajectories end at a U-turn, so the cost is random. ``max_grad_evals``
  caps it honestly: an iteration runs only if, at its worst (2^max_tree_depth − 1
  leapfrog steps per chain), it keeps the total within the cap; once one cannot,
  the chains stop. Shapes stay static: the draws of iterations that did not run are
  NaN and ``params["num_valid"]`` says how many leading draws per chain are real.

Gradient evaluations are counted from the kernel: one per leapfrog step, plus one
per chain at the start (NumPyro's step-size heuristic is off, so nothing else
evaluates a gradient). ``diagnostics`` report, over the valid draws, the smallest
bulk ESS and the largest rank-normalized split R-hat across coordinates
(:mod:`vibench.numerics.mcmc_diagnostics`), the number of divergent transitions and the mean
acceptance probability after warm-up. The trace is the mean over chains of log p(x, z)
per iteration, warm-up included (objective ``log_joint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from vibench.declarations import Deferred, Method
from vibench.spec import Range

VERSION = "2"


class _ChainStates:
    """The parameters' joint check of both samplers: every chain state is kept."""

    def check(self) -> None:
        """At most 10^7 chain states kept (num_chains · (num_warmup + num_samples))."""
        states = self.num_chains * (self.num_warmup + self.num_samples)
        if states > 10**7:
            raise ValueError(
                "parameters num_chains, num_warmup, num_samples must satisfy "
                f"num_chains * (num_warmup + num_samples) <= 10^7 (states kept); got {states}"
            )


@dataclass(frozen=True)
class NUTSConfig(_ChainStates):
    """num_warmup / num_samples: iterations per chain; num_chains: vectorized chains;
    target_accept: dual-averaging target; max_tree_depth: NUTS tree depth cap;
    dense_mass: adapt a dense (not diagonal) mass matrix; max_grad_evals: cap on
    gradient evaluations over all chains (0: none)."""

    num_warmup: Annotated[int, Range(0, 10**5)] = 500
    num_samples: Annotated[int, Range(1, 10**5)] = 500
    num_chains: Annotated[int, Range(1, 256)] = 4
    target_accept: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.8
    max_tree_depth: Annotated[int, Range(1, 15)] = 10
    dense_mass: bool = False
    max_grad_evals: Annotated[int, Range(0, 10**9)] = 0


@dataclass(frozen=True)
class HMCConfig(_ChainStates):
    """num_warmup / num_samples: iterations per chain; num_chains: vectorized chains;
    num_steps: leapfrog steps per iteration; target_accept: dual-averaging target;
    dense_mass: adapt a dense (not diagonal) mass matrix."""

    num_warmup: Annotated[int, Range(0, 10**5)] = 500
    num_samples: Annotated[int, Range(1, 10**5)] = 500
    num_chains: Annotated[int, Range(1, 256)] = 4
    num_steps: Annotated[int, Range(1, 1024)] = 16
    target_accept: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.8
    dense_mass: bool = False


nuts = Method(
    name="nuts",
    version=VERSION,
    Config=NUTSConfig,
    fit=Deferred("vibench.methods._mcmc:fit_nuts"),
    budget=Deferred("vibench.methods._mcmc:budget_nuts"),
    doc="NUTS (Hoffman & Gelman 2014): NumPyro's kernel, vectorized chains, capped cost.\n\n"
    + __doc__,
)


hmc = Method(
    name="hmc",
    version=VERSION,
    Config=HMCConfig,
    fit=Deferred("vibench.methods._mcmc:fit_hmc"),
    budget=Deferred("vibench.methods._mcmc:budget_hmc"),
    doc="HMC (Neal 2011): NumPyro's kernel, fixed leapfrog steps, vectorized chains.\n\n"
    + __doc__,
)
