"""vibench: benchmarks and diagnostics for variational inference, with exact ground truth."""

from vibench.core import Approximation, LogDensity, Method, Reference, Task, TaskFamily

__all__ = ["Approximation", "LogDensity", "Method", "Reference", "Task", "TaskFamily"]
