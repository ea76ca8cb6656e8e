"""Simulation-based calibration: ``run`` (vmapped fits over simulated data sets, written
to the store), ``ranks`` (ranks of the true parameters), ``uniformity`` (tests of the
ranks), ``plots`` (rank histograms, ECDF differences, the text summary).

Importing this package loads no JAX: the command line reads its defaults here.
"""

DEFAULT_REPLICATES = 200
"""Simulated data sets of an SBC run (``vibench sbc --replicates``)."""
DEFAULT_DRAWS = 99
"""Posterior draws per data set (ranks 0..L; ``vibench sbc --draws``)."""
