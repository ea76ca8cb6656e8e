"""Built-in methods: one module per method family, each defining :class:`vibench.core.Method` objects."""
