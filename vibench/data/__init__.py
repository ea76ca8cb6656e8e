"""Public data sets: located in a data directory, checked against committed sha256 sums.

A data set's files live under ``ROOT/<collection>/<set>/`` for the first root that
has them, searched in order: the directory a caller passes, the environment variable
``VIBENCH_DATA``, then the user cache ``~/.cache/vibench``
(:func:`vibench.data.files.data_roots`). Every file is checked against its sha256 before
it is read; a missing or altered file is a one-line :class:`vibench.data.files.DataFileError`
naming the file and the directories searched. Downloads (for machines with internet)
go to the cache, verified before they are moved into place.

Modules: ``files`` (roots, lookup, checksums, verified download), ``uci`` (the UCI
regression sets with their standard train/test splits), ``uci_sha256`` (their sums).
Imports no JAX.
"""
