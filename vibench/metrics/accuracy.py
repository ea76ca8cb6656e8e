"""Accuracy against the reference: exact evidence, exact KL, errors of means and sds.

Errors are in units of the reference posterior sd, averaged over dimensions as a
root mean square (:func:`vibench.metrics.estimates.rms_with_se`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vibench.core import Approximation, Reference
from vibench.harness.precision import in_float64
from vibench.metrics.estimates import Estimate, rms_with_se
from vibench.structure.conjugate import gaussian_kl

if TYPE_CHECKING:
    from vibench.metrics.evaluation import Evaluation


def standardized_mean_error(mean: np.ndarray, mean_se: np.ndarray, ref: Reference) -> Estimate:
    """RMS over dimensions of (mean − mean_p) / sd_p, the reference's error included."""
    ref_se = np.zeros_like(mean) if ref.mean_se is None else np.asarray(ref.mean_se, np.float64)
    sd_p = np.asarray(ref.std, np.float64)
    errors = (mean - np.asarray(ref.mean, np.float64)) / sd_p
    return rms_with_se(errors, np.hypot(mean_se, ref_se) / sd_p)


def log_px(ev: Evaluation) -> Estimate:
    """The exact log evidence the task's reference gives."""
    return Estimate(float(ev.reference.log_evidence))


def exact_kl(approx: Approximation, ref: Reference) -> float | None:
    """KL(q ‖ p) in closed form, or None where it is not known.

    Against a dense Gaussian posterior (``ref.gaussian``) q must give its dense
    ``gaussian()``; against a posterior of independent blocks (``ref.blocks``) q gives
    its mean and covariance blocks of the same size (``family.blocks``: mean-field,
    block-diagonal, and full-rank or low-rank q of any size that fits in memory), and
    the KL is a sum over blocks, O(N·K³).
    """
    if ref.gaussian is not None:
        q = approx.gaussian()
        return None if q is None else float(in_float64(gaussian_kl, *q, *ref.gaussian))  # KL ≥ 0 to rounding
    if ref.blocks is not None:
        blocks = getattr(approx.family, "blocks", None)
        q = None if blocks is None else blocks(approx.params, ref.blocks.block)
        return None if q is None else float(ref.blocks.kl(*q))
    return None


def kl(ev: Evaluation) -> Estimate:
    """Exact KL(q ‖ p) between a Gaussian q and an exactly Gaussian posterior."""
    return Estimate(ev.exact_kl)


def mean_error(ev: Evaluation) -> Estimate:
    """RMS over dimensions of (mean_q − mean_p) / sd_p."""
    mean, _, mean_se, _ = ev.moments
    return standardized_mean_error(mean, mean_se, ev.reference)


def std_error(ev: Evaluation) -> Estimate:
    """RMS over dimensions of log(sd_q / sd_p)."""
    _, sd, _, sd_se = ev.moments
    ref = ev.reference
    sd_p = np.asarray(ref.std, np.float64)
    ref_se = np.zeros_like(sd) if ref.std_se is None else np.asarray(ref.std_se) / sd_p
    return rms_with_se(np.log(sd / sd_p), np.hypot(sd_se / sd, ref_se))
