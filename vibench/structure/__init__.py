"""Typed task extensions: model structure some methods and metrics need, looked up with
:meth:`vibench.core.Task.extension`, never by task name.

Modules: ``conjugate`` (exactly Gaussian posteriors and their closed forms),
``minibatch`` (subsampling data points), ``local`` (per-datum latents: their place in
the flat vector and their minibatch log joint), ``modes`` (where a multimodal target's modes are),
``predictive`` (held-out points' predictive densities and predictions).
"""
