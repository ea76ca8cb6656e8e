"""The one record of every metric vibench writes: name, title, unit, direction, whether it
is a headline, and, for the metrics of a fitted approximation, how to compute it and when
it applies.

The run summary, the HTML report, the paper table and comparisons read these records;
nothing else says which way a metric is better or what it is called. This module imports
no JAX (reading results never loads the fitting stack): ``compute`` is a
:class:`vibench.declarations.Deferred` reference into the metric modules, and ``applies``
looks only at attributes of the :class:`vibench.metrics.evaluation.Evaluation`.

Metrics without ``compute`` are recorded by the harness (cost, method diagnostics), by
SBC, or derived when results are read (``elbo_gap``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

from vibench.declarations import Deferred

if TYPE_CHECKING:
    from vibench.metrics.estimates import Estimate
    from vibench.metrics.evaluation import Evaluation

Direction = Literal["higher", "lower"] | None
HIGHER, LOWER = "higher", "lower"

METRIC_DRAWS = 4096
"""Draws from q for the Monte Carlo metrics (``vibench run --draws``)."""


@dataclass(frozen=True)
class Metric:
    """A metric: ``name`` as stored; ``title`` for display; ``unit`` (``""``: none);
    ``direction``: which way is better (``None``: no best, e.g. an exact task property);
    ``headline``: shown in the run summary, the report's overview and the default paper
    table whenever present; ``hidden``: never a column (a flag, or a task property);
    ``compute(evaluation) -> Estimate`` and ``applies(evaluation) -> bool`` for the
    metrics of a fitted approximation (``None`` for the others, see the module doc);
    ``tolerance``: the smallest change, in ``unit``, that matters in practice
    (``vibench compare`` calls a smaller one unchanged however certain it is)."""

    name: str
    title: str
    direction: Direction = None
    unit: str = ""
    headline: bool = False
    hidden: bool = False
    compute: Callable[[Evaluation], Estimate] | None = None
    applies: Callable[[Evaluation], bool] | None = None
    tolerance: float = 0.0


def _density(ev: Evaluation) -> bool:
    return ev.approx.has_density


def _reference_moments(ev: Evaluation) -> bool:
    return ev.reference.mean is not None and ev.reference.std is not None


def _distances(ev: Evaluation) -> bool:
    return ev.distance_samples is not None


def _modes(ev: Evaluation) -> bool:
    return ev.modes is not None


def _of(module: str, name: str) -> Deferred:
    return Deferred(f"vibench.metrics.{module}:{name}")


METRICS: tuple[Metric, ...] = (
    Metric("elbo_gap", "log p(x) − ELBO", LOWER, "nats", headline=True, tolerance=0.05),
    Metric("elbo", "ELBO", HIGHER, "nats", compute=_of("importance", "elbo"), applies=_density,
           tolerance=0.05),
    Metric("log_px", "log p(x) (exact)", None, "nats", hidden=True, compute=_of("accuracy", "log_px"),
           applies=lambda ev: ev.reference.log_evidence is not None),
    Metric("log_px_is", "log p(x) (IS)", HIGHER, "nats", headline=True,
           compute=_of("importance", "log_px_is"), applies=_density, tolerance=0.05),
    Metric("khat", "k̂", LOWER, headline=True, compute=_of("importance", "khat"),
           applies=lambda ev: _density(ev) and ev.psis.khat is not None, tolerance=0.05),
    Metric("khat_flag", "k̂ flag", None, hidden=True, compute=_of("importance", "khat_flag"), applies=_density),
    Metric("is_ess", "IS ESS", HIGHER, "draws", compute=_of("importance", "is_ess"), applies=_density),
    Metric("is_ess_frac", "IS ESS / S", HIGHER, compute=_of("importance", "is_ess_frac"), applies=_density),
    Metric("kl", "KL(q‖p)", LOWER, "nats", compute=_of("accuracy", "kl"),
           applies=lambda ev: ev.exact_kl is not None, tolerance=0.05),
    Metric("family_gap", "gap to best of family", LOWER, "nats", compute=_of("importance", "family_gap"),
           applies=lambda ev: ev.family_best_elbo is not None, tolerance=0.05),
    Metric("mean_error", "mean error", LOWER, "posterior sd", headline=True,
           compute=_of("accuracy", "mean_error"), applies=_reference_moments, tolerance=0.02),
    Metric("std_error", "sd error", LOWER, "log ratio", headline=True, compute=_of("accuracy", "std_error"),
           applies=lambda ev: ev.reference.std is not None, tolerance=0.02),
    Metric("psis_mean_error", "PSIS mean error", LOWER, "posterior sd",
           compute=_of("importance", "psis_mean_error"),
           applies=lambda ev: _density(ev) and _reference_moments(ev) and ev.psis.reliable),
    Metric("w1_mean", "W1 (marginals)", LOWER, "posterior sd", compute=_of("distances", "w1_mean"),
           applies=_distances),
    Metric("w1_sliced", "W1 (sliced)", LOWER, "posterior sd", compute=_of("distances", "w1_sliced"),
           applies=_distances),
    Metric("mmd", "MMD", LOWER, compute=_of("distances", "mmd"), applies=_distances),
    Metric("mode_coverage", "mode coverage", HIGHER, "fraction of modes", headline=True,
           compute=_of("multimodal", "mode_coverage"), applies=_modes),
    Metric("mode_mass_error", "mode mass error", LOWER, "total variation",
           compute=_of("multimodal", "mode_mass_error"), applies=_modes),
    Metric("test_lpd", "test log predictive density", HIGHER, "nats per point", headline=True,
           compute=_of("predictive", "test_lpd"), applies=_of("predictive", "applies_lpd")),
    Metric("test_lpd_exact", "test log predictive density (exact)", None, "nats per point", hidden=True,
           compute=_of("predictive", "test_lpd_exact"), applies=_of("predictive", "applies_exact")),
    Metric("test_rmse", "test RMSE", LOWER, compute=_of("predictive", "test_rmse"),
           applies=_of("predictive", "applies_rmse")),
    Metric("test_accuracy", "test accuracy", HIGHER, "fraction", compute=_of("predictive", "test_accuracy"),
           applies=_of("predictive", "applies_accuracy")),
    Metric("heldout_loglik", "held-out log-likelihood per word", HIGHER, "nats per word", headline=True,
           compute=_of("topics", "heldout_loglik"), applies=_of("topics", "applies"), tolerance=0.005),
    Metric("perplexity", "held-out perplexity", LOWER, compute=_of("topics", "perplexity"),
           applies=_of("topics", "applies")),
    Metric("elbo_per_word", "ELBO per word", HIGHER, "nats per word", compute=_of("topics", "elbo_per_word"),
           applies=_of("topics", "applies_density"), tolerance=0.005),
    Metric("topic_recovery", "topic recovery", HIGHER, "cosine", headline=True,
           compute=_of("topics", "topic_recovery"), applies=_of("topics", "applies_recovery"), tolerance=0.01),
    Metric("test_lpd_gap", "test log predictive density gap (reference − method)", LOWER, "nats per point",
           compute=_of("reference_predictive", "test_lpd_gap"), applies=_of("reference_predictive", "applies"),
           tolerance=0.05),
    Metric("predictive_w2", "predictive W2 to reference (mean over test points)", LOWER, "target units",
           compute=_of("reference_predictive", "predictive_w2"), applies=_of("reference_predictive", "applies")),
    Metric("test_log_px", "test log p(x) (IS)", HIGHER, "nats per image", headline=True,
           compute=_of("generative", "test_log_px"), applies=_of("generative", "applies"), tolerance=0.1),
    Metric("test_elbo", "test ELBO", HIGHER, "nats per image", compute=_of("generative", "test_elbo"),
           applies=_of("generative", "applies"), tolerance=0.1),
    Metric("test_khat", "test k̂ (mean over images)", LOWER, compute=_of("generative", "test_khat"),
           applies=_of("generative", "applies"), tolerance=0.05),
    Metric("test_khat_unreliable", "test images with k̂ > 0.7", LOWER, "fraction",
           compute=_of("generative", "test_khat_unreliable"), applies=_of("generative", "applies")),
    Metric("active_units", "active units", None, "units", compute=_of("generative", "test_active_units"),
           applies=_of("generative", "applies")),
    Metric("test_amortization_gap", "test amortization gap (per-image fit − encoder ELBO)", LOWER,
           "nats per image", compute=_of("generative", "test_amortization_gap"),
           applies=_of("generative", "applies"), tolerance=0.1),
    Metric("time_fit_s", "fit time (s)", LOWER, "s", headline=True),
    Metric("time_compile_s", "compile time (s)", LOWER, "s"),
    Metric("compile_cache_hit", "compile served by the persistent cache (1) or not (0)", hidden=True),
    Metric("grad_evals", "gradient evaluations", LOWER),
    Metric("steps", "steps"),
    # MCMC diagnostics (vibench.methods._mcmc), titled but not ranked: no best among methods.
    Metric("divergences", "divergent transitions after warm-up"),
    Metric("rhat_max", "R̂ (worst coordinate)"),
)
"""Every known metric, in display order; a metric not listed (a method's own diagnostic,
an SBC p-value) is shown after these, by its name, with no best."""

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


def record(name: str) -> Metric:
    """The record of ``name``; an unlisted metric gets a plain one (its name, no best)."""
    return BY_NAME.get(name) or Metric(name, name)


def title(name: str) -> str:
    return record(name).title


def direction(name: str) -> Direction:
    return record(name).direction


def metric_order(names) -> list[str]:
    """``names`` in display order (:data:`METRICS`'s order, then alphabetical)."""
    rank = {m.name: i for i, m in enumerate(METRICS)}
    return sorted(set(names), key=lambda n: (rank.get(n, len(rank)), n))


HEADLINE: tuple[str, ...] = tuple(m.name for m in METRICS if m.headline)
HIDDEN: tuple[str, ...] = tuple(m.name for m in METRICS if m.hidden)
COMPUTED: tuple[Metric, ...] = tuple(m for m in METRICS if m.compute is not None)
