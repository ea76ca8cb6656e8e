"""vibench: benchmarks and diagnostics for variational inference, with exact ground truth.

The package root imports no JAX (the command line checks a request before loading it):
the declarations of tasks and methods are here, the core types in :mod:`vibench.core`.
"""

from vibench.declarations import Deferred, Method, TaskFamily, any_task, gradient_free

__all__ = ["Deferred", "Method", "TaskFamily", "any_task", "gradient_free"]
