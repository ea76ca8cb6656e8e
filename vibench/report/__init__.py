"""Presenting results: a static HTML report (``vibench report``) and paper tables
(``vibench table``).

Modules: ``summary`` (results loaded and aggregated over seeds; metric directions),
``tables`` (LaTeX / Markdown / CSV tables), ``figures`` (matplotlib figures),
``build`` (the HTML pages, from the Jinja2 templates in ``templates/``).
"""
