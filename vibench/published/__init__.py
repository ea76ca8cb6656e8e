"""Published results that vibench's tables are read beside, each row marked with its source.

Modules: ``uci`` (test log-likelihood and RMSE on the UCI regression splits). Imports no JAX.
"""
