"""Numerical building blocks shared by methods: ``lbfgs`` (L-BFGS under ``lax``),
``mcmc_diagnostics`` (ESS and R-hat in JAX).
"""
