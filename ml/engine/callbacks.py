"""What the training loop reports to: per step, per epoch, logs and checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Callback:
    """Subclass and override what you need; every hook is a no-op by default."""

    def on_start(self, info: dict[str, Any]) -> None:
        """``info``: device, total_epochs, steps_per_epoch, train_videos, start_epoch."""

    def on_resume(self, *, history: list[dict[str, float]]) -> None:
        """The run continues from a checkpoint (called after on_start); ``history`` holds the metrics of every
        epoch it had completed, so a reporter that lost some (a crash between checkpoint and report) can restore them."""

    def on_step(self, *, epoch: int, step: int, metrics: dict[str, float]) -> None:
        """``step`` is global (1-based) and ``epoch`` 1-based."""

    def on_epoch(self, *, epoch: int, metrics: dict[str, float]) -> None:
        """Epoch means of each loss term plus validation/retrieval metrics when computed."""

    def on_log(self, message: str) -> None:
        """Human-readable progress and warnings (scan problems, resume points)."""

    def on_before_checkpoint(self, *, epoch: int) -> None:
        """A checkpoint (or the final results) is about to be written; raise to veto it and stop the run (a
        service worker whose job was taken over by another attempt must not overwrite that attempt's files)."""

    def on_checkpoint(self, *, path: Path, epoch: int) -> None:
        """A checkpoint was written (the file is complete)."""


class CallbackList(Callback):
    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = callbacks

    def on_start(self, info: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_start(info)

    def on_resume(self, *, history: list[dict[str, float]]) -> None:
        for cb in self.callbacks:
            cb.on_resume(history=history)

    def on_step(self, *, epoch: int, step: int, metrics: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_step(epoch=epoch, step=step, metrics=metrics)

    def on_epoch(self, *, epoch: int, metrics: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_epoch(epoch=epoch, metrics=metrics)

    def on_log(self, message: str) -> None:
        for cb in self.callbacks:
            cb.on_log(message)

    def on_before_checkpoint(self, *, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_before_checkpoint(epoch=epoch)

    def on_checkpoint(self, *, path: Path, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_checkpoint(path=path, epoch=epoch)


class HistoryCallback(Callback):
    """Keeps every epoch's metrics in memory (used by experiments and tests)."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self.steps: list[dict[str, float]] = []
        self.logs: list[str] = []

    def on_step(self, *, epoch: int, step: int, metrics: dict[str, float]) -> None:
        self.steps.append({"epoch": epoch, "step": step, **metrics})

    def on_epoch(self, *, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs.append({"epoch": epoch, **metrics})

    def on_log(self, message: str) -> None:
        self.logs.append(message)
