"""Built-in tasks: one module per task family, each defining :class:`vibench.core.TaskFamily` objects."""
