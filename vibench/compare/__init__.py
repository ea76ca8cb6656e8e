"""Comparing two results directories: the CI regression gate ``vibench compare BASE
NEW``. ``pairing`` reads both sides, pairs their entries and compares environments;
``verdict`` holds the statistical rules for accuracy, speed, exact counts, SBC and run
status; ``render`` writes the terminal table, Markdown and JSON; ``command`` is the CLI
handler. No JAX is imported.
"""

FORMATS = ("text", "markdown", "json")
"""Output formats of ``vibench compare`` (``--format``)."""
DEFAULT_Z = 4.0
"""The |standardized difference| an accuracy change must reach (``--z``)."""
DEFAULT_FACTOR = 1.1
"""The ratio of median times a speed change must exceed (``--factor``)."""
DEFAULT_ALPHA = 0.002
"""The significance level of the speed rank test (``--alpha``; asv's)."""
