"""ArviZ, imported once without the FutureWarning ArviZ 0.23 prints on import (it
announces its 1.0 refactor): ``from vibench.numerics.arviz import az``."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

__all__ = ["az"]
