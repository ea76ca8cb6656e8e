"""Mode metrics for multimodal targets (tasks with a :class:`vibench.modes.Modes` extension).

Each draw of the approximation is assigned to a mode (``Modes.assign``), or to none
when it lies outside every mode; p̂_m is the fraction of draws in mode m, p̂_off the
fraction in none, and w_m the mode's exact mass. Standard errors come
from the draws' count variation: the binomial sd of p̂_m, sqrt(p̂(1 − p̂)/ESS), with
ESS = n for independent draws and ArviZ's ESS of the mode indicators for MCMC; a
particle set's masses are q's own, exact (standard error 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax.numpy as jnp
import numpy as np
from scipy.stats import norm

from vibench.metrics.estimates import Estimate, mean_with_se
from vibench.structure.modes import OFF_MODE, Modes

if TYPE_CHECKING:
    from vibench.metrics.evaluation import Evaluation

FAIR_SHARE = 0.5


def _mode_indices(ev: Evaluation, modes: Modes) -> np.ndarray:
    """The mode of each of the approximation's draws, shape (chains, n)."""
    values = ev.draws.values
    flat = jnp.asarray(values.reshape(-1, values.shape[-1]))
    return np.asarray(modes.assign(flat)).reshape(values.shape[:2])


def _mode_masses(ev: Evaluation) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mode indices (chains, n), p̂ and its standard error (M,), exact weights w (M,)."""
    modes = ev.task.extension(Modes)
    indices = _mode_indices(ev, modes)
    weights = np.asarray(modes.weights, np.float64)
    indicators = (indices[..., None] == np.arange(weights.size)).astype(np.float64)
    mass, mass_se = mean_with_se(indicators, ev.draws.kind)
    return indices, mass, mass_se, weights


def mode_coverage(ev: Evaluation) -> Estimate:
    """Fraction of modes holding a fair share of the draws: p̂_m ≥ w_m / 2.

    Half the exact mass separates a method that drops or starves a mode (p̂ ≈ 0) from
    one that represents it within a factor of two, and exact draws pass with room to
    spare: (w − w/2) / sqrt(w(1 − w)/n) ≥ 4 sd once n·w_m ≥ 64. The standard error
    treats each mode's pass as a Bernoulli event with probability Φ((p̂ − w/2)/se(p̂)),
    independent across modes: sqrt(Σ P(1 − P)) / M.
    """
    _, mass, mass_se, weights = _mode_masses(ev)
    margin = mass - FAIR_SHARE * weights
    covered = margin >= 0
    z = np.divide(margin, mass_se, out=np.where(covered, np.inf, -np.inf), where=mass_se > 0)
    pass_probability = norm.cdf(z)
    se = np.sqrt(np.sum(pass_probability * (1 - pass_probability))) / weights.size
    return Estimate(float(covered.mean()), float(se))


def mode_mass_error(ev: Evaluation) -> Estimate:
    """Total variation ½ (Σ |p̂_m − w_m| + p̂_off) between the draws' mode masses and the
    exact ones (the target's off-mode mass, MODE_TAIL at most, counts as zero).

    The standard error is the delta method's: TV is linear in p̂ with slope ½ sign(p̂_m − w_m)
    about p̂, so it is the standard error of the mean of ½ sign(p̂ − w)[mode of each draw]
    over the draws (which carries the masses' multinomial covariance). Noise in p̂ biases
    TV up: by about ½ Σ √(2 w_m(1 − w_m)/(π n)) for exact draws.
    """
    indices, mass, _, weights = _mode_masses(ev)
    off_mode = 1.0 - mass.sum()
    slope = np.append(0.5 * np.sign(mass - weights), 0.5)  # the last entry: off-mode draws
    per_draw = slope[np.where(indices == OFF_MODE, weights.size, indices)]
    _, se = mean_with_se(per_draw[..., None], ev.draws.kind)
    return Estimate(float(0.5 * (np.sum(np.abs(mass - weights)) + off_mode)), float(se[0]))
