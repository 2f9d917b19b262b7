"""The training progress bar, on stderr (stdout stays clean for ``--json`` output and pipes)."""

from __future__ import annotations

import time

import torch

SHOW_AFTER_EXPECTED_S = 5.0
"""With ``enabled=None``, the bar appears once the run is expected to take at least this long."""


class ProgressBar:
    """A rich progress bar on stderr with the loss and the leading eigenvalue estimates.

    Args:
        enabled: True (always shown), False (never) or None: shown once the whole run is expected to
            take :data:`SHOW_AFTER_EXPECTED_S` seconds or more, judged from the pace of the steps so
            far at each :meth:`update` (a fast run on a big graph stays quiet, a slow run on a small
            one gets its bar).
        total: the run's last step.
        completed: steps already taken (a resumed run).
    """

    def __init__(self, enabled: bool | None, total: int, completed: int):
        self.enabled, self.total, self.completed = enabled, total, completed
        self.progress = None

    def __enter__(self):
        self.started = time.perf_counter()
        if self.enabled:
            self._start()
        return self

    def _start(self) -> None:
        from rich.console import Console  # deferred: only a shown bar needs rich
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("fit"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.fields[status]}"), console=Console(stderr=True), transient=False)
        self.progress.start()
        self.task = self.progress.add_task("fit", total=self.total, completed=self.completed, status="")

    def expected_seconds(self, step: int) -> float:
        """The whole run's expected duration from the pace of the steps taken in this process."""
        done = step - self.completed
        if done <= 0:
            return 0.0
        return (time.perf_counter() - self.started) / done * (self.total - self.completed)

    def update(self, step: int, loss: float, eigenvalues: torch.Tensor) -> None:
        if self.progress is None and self.enabled is None and self.expected_seconds(step) >= SHOW_AFTER_EXPECTED_S:
            self._start()
        if self.progress is not None:
            leading = " ".join(f"{v:.4f}" for v in eigenvalues[:3].tolist())
            self.progress.update(self.task, completed=step, status=f"loss {loss:.4f}  λ {leading}")

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False
