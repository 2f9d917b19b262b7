"""User-facing errors.

Every problem a user can fix (bad input, missing files, wrong options) raises a
:class:`GraphEigenmapError` whose message is one line that names the problem and the fix.
The CLI prints that line and exits with code 2; set ``GRAPH_EIGENMAP_DEBUG=1`` to see the traceback.

This module imports nothing, so that code which only needs the error types stays light.
"""


class GraphEigenmapError(ValueError):
    """A problem with the user's input, with a one-line message that says how to fix it."""


class DataError(GraphEigenmapError):
    """A dataset that cannot be read or that violates the graph's invariants."""


class DatasetUnavailableError(DataError):
    """A dataset that is neither on disk nor downloadable from here."""


class InputWarning(UserWarning):
    """Input that is legal but likely a mistake (an option the run ignores, too few labels for the classes, ...).

    One line naming what was seen and what to do; the CLI prints it once, on stderr, as ``warning: ...``.
    """


class TrainingDivergedError(GraphEigenmapError):
    """The training loss became NaN or infinite.

    Attributes:
        step: the optimizer step (1-based) at which the non-finite loss was seen.
        loss: that loss value (``nan``, ``inf`` or ``-inf``).
        lr: the learning rate the run used (None where unknown).
    """

    def __init__(self, step: int, loss: float, lr: float | None = None):
        self.step, self.loss, self.lr = int(step), float(loss), lr
        rate = "" if lr is None else f" with learning rate {lr:g}"
        lower = "a lower learning rate" if lr is None else f"a lower learning rate such as {float(f'{lr / 3:.2g}'):g}"
        super().__init__(f"training diverged: the loss became {self.loss} at step {self.step}{rate}; "
                         f"retry with {lower}.")
