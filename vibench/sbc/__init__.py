"""Simulation-based calibration: ``run`` (vmapped fits over simulated data sets, written
to the store), ``ranks`` (ranks of the true parameters), ``uniformity`` (tests of the
ranks), ``plots`` (rank histograms, ECDF differences, the text summary).
"""
