"""Running and recording: ``runner`` (fit, time and measure one task × method over
seeds), ``store`` (the Parquet results store), ``environment`` (versions, commit, host,
device).
"""
