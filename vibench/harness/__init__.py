"""Running and recording: ``runner`` (fit, time and measure one task × method over
seeds), ``store`` (the Parquet results store), ``environment`` (versions, commit, host,
device).
"""

DRAWS_STORED_MAX_DIM = 2
"""Runs on tasks of at most this many dimensions keep draws of their approximation."""
DRAWS_STORED = 500
"""How many draws such a run (and its task's reference) keeps, for the report's plots."""
RUNS_PREFIX = "runs-"
"""The name every metrics file of a results directory starts with (``runs-<stamp>-<id>.parquet``)."""
