"""The one training loop: teacher pretraining, KD students, no-KD baselines and fine-tuning all run here.

What differs between them lives in a ``Task`` (its model, its loss, its validation); the loop owns
the optimiser, the scheduler, step/epoch reporting, checkpoints, exact resume and cooperative stop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ml.config import OptimConfig, RuntimeConfig
from ml.engine.callbacks import Callback
from ml.engine.checkpoint import BEST_NAME, CHECKPOINT_NAME, capture_rng, load_checkpoint, restore_rng, save_checkpoint
from ml.engine.runtime import Runtime
from ml.data.loader import VideoLoader, make_loader
from ml.errors import CheckpointError


@dataclass
class StepOutput:
    loss: Tensor
    metrics: dict[str, float]
    samples: int


class Task(Protocol):
    """What a kind of training contributes to the loop."""

    def trainable_parameters(self) -> Iterable[nn.Parameter]: ...

    def train(self) -> None: ...

    def training_step(self, batch: dict[str, Any]) -> StepOutput: ...

    def end_of_epoch(self, epoch: int, *, last: bool) -> dict[str, float]:
        """Validation/retrieval metrics for this epoch (1-based); may be empty."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class FitResult:
    status: Literal["completed", "stopped"]
    epochs_completed: int
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(list(params), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig) -> Any:
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience, min_lr=cfg.min_lr
        )
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr)
    return None


@dataclass
class _EpochMeter:
    """Sample-weighted running means of step metrics (kept in checkpoints so a resumed epoch averages right)."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def add(self, metrics: dict[str, float], samples: int) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + value * samples
        self.count += samples

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}


class TrainingLoop:
    """Runs a Task over a dataset for ``optim.epochs`` epochs with checkpoints in ``out_dir``."""

    def __init__(
        self,
        task: Task,
        dataset: Dataset[Any],
        *,
        optim: OptimConfig,
        runtime_cfg: RuntimeConfig,
        runtime: Runtime,
        out_dir: Path,
        workers: int,
        checkpoint_meta: dict[str, Any],
        callback: Callback,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.task, self.dataset = task, dataset
        self.optim_cfg, self.runtime_cfg, self.rt = optim, runtime_cfg, runtime
        self.out_dir, self.workers = Path(out_dir), workers
        self.meta = checkpoint_meta
        self.callback = callback
        self.should_stop = should_stop or (lambda: False)
        self.optimizer = build_optimizer(task.trainable_parameters(), optim)
        self.scheduler = build_scheduler(self.optimizer, optim)
        n = len(dataset)  # type: ignore[arg-type]
        self.drop_last = n > optim.batch_size  # BatchNorm cannot train on a lone sample
        self.steps_per_epoch = self._batches_in(n)
        self.epoch = 0  # epochs fully completed
        self.batches_done = 0  # batches completed in the current epoch
        self.global_step = 0
        self.meter = _EpochMeter()
        self.history: list[dict[str, float]] = []
        self._data_loader: VideoLoader | None = None
        self.best_value = math.inf  # lowest epoch val_loss so far; best.pt holds that epoch's state
        self.best_epoch = 0

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    @property
    def best_path(self) -> Path:
        return self.out_dir / BEST_NAME

    def _batches_in(self, n: int) -> int:
        full = n // self.optim_cfg.batch_size if self.drop_last else math.ceil(n / self.optim_cfg.batch_size)
        cap = self.runtime_cfg.max_steps_per_epoch
        return min(full, cap) if cap else full

    # ---- checkpoints -------------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        return {
            **self.meta,
            "task": self.task.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "global_step": self.global_step,
            "meter": {"sums": self.meter.sums, "count": self.meter.count},
            "history": self.history,
            "rng": capture_rng(),
            "best": {"value": self.best_value, "epoch": self.best_epoch},
            "saved_at": time.time(),
        }

    def save(self, *, best: bool = False, keep: bool = False) -> Path:
        self.callback.on_before_checkpoint(epoch=self.epoch)
        payload = self._payload()
        path = save_checkpoint(self.checkpoint_path, payload)
        if best:
            save_checkpoint(self.best_path, payload)
        if keep:
            save_checkpoint(self.out_dir / f"epoch{self.epoch:04d}.pt", payload)
        self.callback.on_checkpoint(path=path, epoch=self.epoch)
        return path

    def try_resume(self) -> bool:
        if not self.checkpoint_path.is_file():
            return False
        state = load_checkpoint(self.checkpoint_path)
        for key in ("training_hash", "data_fingerprint"):
            if key in self.meta and state.get(key) != self.meta[key]:
                raise CheckpointError(
                    f"{self.checkpoint_path} was written with a different {key.replace('_', ' ')} "
                    f"({state.get(key)} != {self.meta[key]}); start a new run directory or restore the original config/data"
                )
        self.task.load_state_dict(state["task"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.batches_done, self.global_step = state["epoch"], state["batches_done"], state["global_step"]
        self.meter = _EpochMeter(dict(state["meter"]["sums"]), state["meter"]["count"])
        self.history = list(state.get("history", []))
        self.best_value, self.best_epoch = state["best"]["value"], state["best"]["epoch"]
        restore_rng(state["rng"])
        self.callback.on_log(
            f"resumed from {self.checkpoint_path}: epoch {self.epoch} complete, {self.batches_done} batches into the next"
        )
        return True

    # ---- the loop ---------------------------------------------------------------------------
    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _loader(self) -> VideoLoader:
        """One loader per run (persistent workers); each epoch sets its order, its skip and the dataset's epoch."""
        if self._data_loader is None:
            self._data_loader = make_loader(
                self.dataset, batch_size=self.optim_cfg.batch_size, shuffle=True, workers=self.workers,
                seed=self.runtime_cfg.seed, drop_last=self.drop_last, pin_memory=self.rt.pin_memory,
            )
        self._data_loader.set_epoch(self.epoch, skip=self.batches_done * self.optim_cfg.batch_size)
        return self._data_loader

    def fit(self, *, resume: bool = True) -> FitResult:
        resumed = bool(resume and self.try_resume())
        total = self.optim_cfg.epochs
        self.callback.on_start(
            {
                "device": str(self.rt.device),
                "total_epochs": total,
                "steps_per_epoch": self.steps_per_epoch,
                "train_videos": len(self.dataset),  # type: ignore[arg-type]
                "start_epoch": self.epoch,
            }
        )
        if resumed:
            self.callback.on_resume(history=list(self.history))
        while self.epoch < total:
            if self._run_epoch() == "stopped":
                return FitResult("stopped", self.epoch, self.history, self.checkpoint_path)
        return FitResult("completed", self.epoch, self.history, self.checkpoint_path)

    def _run_epoch(self) -> str:
        self.task.train()
        epoch_no = self.epoch + 1
        tick = time.perf_counter()
        for batch in self._loader():
            if self.batches_done >= self.steps_per_epoch:
                break
            out = self.task.training_step(batch)
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if self.optim_cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(
                    [p for g in self.optimizer.param_groups for p in g["params"]], self.optim_cfg.grad_clip
                )
            self.optimizer.step()
            loss_value = float(out.loss.detach())
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"loss became {loss_value} at epoch {epoch_no} step {self.global_step + 1}; lower optim.lr or enable optim.grad_clip"
                )
            self.batches_done += 1
            self.global_step += 1
            now = time.perf_counter()
            metrics = {**out.metrics, "lr": self.current_lr(), "clips_per_s": out.samples / max(now - tick, 1e-9)}
            tick = now
            self.meter.add(out.metrics, out.samples)
            if self.global_step % self.runtime_cfg.log_every == 0 or self.batches_done == self.steps_per_epoch:
                self.callback.on_step(epoch=epoch_no, step=self.global_step, metrics=metrics)
            if self.should_stop():
                self.callback.on_log(f"stop requested at epoch {epoch_no} step {self.global_step}; checkpointing")
                self.save()
                return "stopped"
        self._finish_epoch(epoch_no)
        return "continue"

    def _finish_epoch(self, epoch_no: int) -> None:
        last = epoch_no == self.optim_cfg.epochs
        metrics = self.meter.means()
        metrics.update(self.task.end_of_epoch(epoch_no, last=last))
        metrics["lr"] = self.current_lr()
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(metrics.get("val_loss", metrics.get("loss", 0.0)))
        elif self.scheduler is not None:
            self.scheduler.step()
        self.epoch, self.batches_done, self.meter = epoch_no, 0, _EpochMeter()
        self.history.append({"epoch": float(epoch_no), **metrics})
        improved = metrics.get("val_loss", math.inf) < self.best_value
        if improved:
            self.best_value, self.best_epoch = metrics["val_loss"], epoch_no
        # Durable first, reported second: whoever sees "epoch N done" can resume from epoch N.
        keep = bool(self.runtime_cfg.keep_every) and epoch_no % self.runtime_cfg.keep_every == 0
        if improved or keep or epoch_no % self.runtime_cfg.checkpoint_every == 0 or last:
            self.save(best=improved, keep=keep)
        self.callback.on_epoch(epoch=epoch_no, metrics=metrics)

