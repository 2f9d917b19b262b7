"""User-facing errors.

Every problem a user can fix (bad input, missing files, wrong options) raises a
:class:`GraphEigenmapError` whose message is one line that names the problem and the fix.
The CLI prints that line and exits non-zero; set ``GRAPH_EIGENMAP_DEBUG=1`` to see the traceback.
"""


class GraphEigenmapError(ValueError):
    """A problem with the user's input, with a one-line message that says how to fix it."""


class DataError(GraphEigenmapError):
    """A dataset that cannot be read or that violates the graph's invariants."""


class DatasetUnavailableError(DataError):
    """A dataset that is neither on disk nor downloadable from here."""
