"""Metrics of a fitted approximation against the task's ground truth, each with its
standard error.

A metric declares when it applies (a density, an exact evidence, reference moments or
draws, Gaussian forms, a task's modes, reliable importance weights); where it does not
the metric is absent, never a made-up number. All Monte Carlo quantities come from one
:class:`vibench.metrics.evaluation.Evaluation`, which draws once. A ``stderr`` of 0
means exact, NaN that no valid standard error exists.

Modules: ``records`` (the one record per metric: title, unit, direction, headline,
how it is computed; imports no JAX), ``evaluation`` (the shared draws and
:func:`~vibench.metrics.evaluation.evaluate`), ``estimates`` (standard errors),
``importance`` (ELBO, log p(x), PSIS), ``accuracy`` (moments, KL), ``distances`` (W1,
sliced W1, MMD), ``multimodal`` (mode coverage and mass), ``predictive`` (held-out
log predictive density, RMSE, accuracy).
"""
