"""The training progress bar."""

from __future__ import annotations

import torch


class ProgressBar:
    """A rich progress bar with the loss and the leading eigenvalue estimates; silent when off."""

    def __init__(self, enabled: bool, total: int, completed: int):
        self.enabled, self.total, self.completed = enabled, total, completed

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("fit"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                     TextColumn("{task.fields[status]}"), transient=False)
            self.progress.start()
            self.task = self.progress.add_task("fit", total=self.total, completed=self.completed, status="")
        return self

    def update(self, step: int, loss: float, eigenvalues: torch.Tensor) -> None:
        if self.enabled:
            leading = " ".join(f"{v:.4f}" for v in eigenvalues[:3].tolist())
            self.progress.update(self.task, completed=step, status=f"loss {loss:.4f}  λ {leading}")

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.stop()
        return False
