"""Fine-tuning / linear probing as a Task: a backbone plus a linear head trained with CE on single clips."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ml.config import FinetuneConfig
from ml.engine.evaluate import mean_loss_and_accuracy, prepare_input
from ml.engine.loop import StepOutput
from ml.engine.runtime import Runtime
from ml.models import build_backbone
from ml.models.pcl_net import VideoClassifier

CLIP_TIME_DIM = 2  # B×C×T×H×W


class ClassifierTask:
    def __init__(
        self,
        cfg: FinetuneConfig,
        *,
        num_classes: int,
        rt: Runtime,
        backbone_state: dict[str, Any] | None,
        validate: Callable[[nn.Module], dict[str, float]] | None = None,
    ) -> None:
        self.cfg, self.rt = cfg, rt
        backbone = build_backbone(cfg.model.backbone, width=cfg.model.width)
        if backbone_state is not None:
            backbone.load_state_dict(backbone_state)
        self.model = VideoClassifier(backbone, num_classes, dropout=cfg.dropout).to(rt.device)
        if rt.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        self.linear = cfg.mode == "linear"
        if self.linear:
            self.model.backbone.requires_grad_(False)
        self._validate = validate

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def train(self) -> None:
        self.model.train()
        if self.linear:
            self.model.backbone.eval()  # a linear probe must not move BatchNorm statistics either

    def training_step(self, batch: dict[str, Any]) -> StepOutput:
        clip = self.rt.to_device(batch["clip"])
        labels = self.rt.to_device(batch["label"])
        with self.rt.autocast():
            logits = self.model(prepare_input(clip, modality=self.cfg.model.modality, time_dim=CLIP_TIME_DIM))
        loss = F.cross_entropy(logits.float(), labels)
        acc = float((logits.argmax(1) == labels).float().mean())
        return StepOutput(loss=loss, metrics={"loss": float(loss.detach()), "acc": acc}, samples=int(labels.shape[0]))

    def end_of_epoch(self, epoch: int, *, last: bool) -> dict[str, float]:
        return self._validate(self.model) if self._validate is not None else {}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])

    def validation_losses(self, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        self.model.eval()
        modality = self.cfg.model.modality
        loss, acc = mean_loss_and_accuracy(
            lambda x: self.model(prepare_input(x, modality=modality, time_dim=CLIP_TIME_DIM)),
            batches, rt=self.rt, input_key="clip",
        )
        self.train()
        return {"val_loss": loss, "val_acc": acc}
