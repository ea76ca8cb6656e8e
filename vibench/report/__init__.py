"""Presenting results: a static HTML report (``vibench report``) and paper tables
(``vibench table``).

Modules: ``summary`` (results loaded and aggregated over seeds; metric directions),
``tables`` (LaTeX / Markdown / CSV tables), ``figures`` (matplotlib figures),
``build`` (the HTML pages, from the Jinja2 templates in ``templates/``).
"""

FORMATS: tuple[str, ...] = ("latex", "markdown", "csv")
"""The paper table's formats (``vibench table --format``)."""
LAYOUTS: tuple[str, ...] = ("auto", "task", "method")
"""The paper table's layouts (``vibench table --rows``; see :mod:`vibench.report.tables`)."""
