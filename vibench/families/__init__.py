"""Approximating families: the static half of an :class:`vibench.core.Approximation`.

Modules: ``gaussian`` (mean-field, full-rank, low-rank), ``draws`` (empirical draws:
MCMC, exact samples, particles), ``flow`` (normalizing flows via flowjax),
``amortized`` (encoders q(z_n | x_n)).
"""
