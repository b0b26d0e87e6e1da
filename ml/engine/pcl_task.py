"""PCL pretraining as a Task: VCP pretext CE + w_con * NCE, plus alpha * KD against a frozen teacher.

Teacher pretraining (alpha = 0, no teacher), KD students and no-KD baselines are this one task
with different DistillConfig values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ml.config import PretrainConfig
from ml.engine.evaluate import mean_loss_and_accuracy, prepare_input
from ml.engine.loop import StepOutput
from ml.engine.runtime import Runtime
from ml.kd_terms import KD_TERMS
from ml.losses import NCEMemoryBank, nce_softmax_loss
from ml.models import build_pcl_net
from ml.models.pcl_net import PCLNet, PCLOutputs

TUPLE_TIME_DIM = 3  # B×n×C×T×H×W


class PCLTask:
    def __init__(
        self,
        cfg: PretrainConfig,
        *,
        num_train: int,
        rt: Runtime,
        teacher: PCLNet | None = None,
        validate: Callable[[nn.Module, int, bool], dict[str, float]] | None = None,  # (net, epoch, last)
        evaluate: Callable[[nn.Module, int, bool], dict[str, float]] | None = None,
    ) -> None:
        self.cfg, self.rt = cfg, rt
        self.net = build_pcl_net(
            cfg.model.backbone,
            cfg.model.width,
            n_clips=cfg.pretext.tuple_len,
            num_pretext=cfg.pretext.num_classes,
            proj_dim=cfg.contrast.proj_dim,
        ).to(rt.device)
        if rt.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last_3d)
        c = cfg.contrast
        self.bank = NCEMemoryBank(
            c.proj_dim,
            num_train,
            negatives=c.negatives,
            temperature=c.temperature,
            momentum=c.momentum,
            exclude_positive=c.exclude_positive_from_negatives,
            seed=cfg.runtime.seed,
        ).to(rt.device)
        self.negatives_rng = torch.Generator().manual_seed(cfg.runtime.seed + 1)
        self.teacher = teacher
        if teacher is not None:
            teacher.eval().requires_grad_(False)
        self._validate, self._evaluate = validate, evaluate

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        return self.net.parameters()

    def train(self) -> None:
        self.net.train()
        if self.teacher is not None:
            self.teacher.eval()

    def training_step(self, batch: dict[str, Any]) -> StepOutput:
        clips = self.rt.to_device(batch["clips"])
        labels = self.rt.to_device(batch["label"])
        index = self.rt.to_device(batch["index"])
        x = prepare_input(clips, modality=self.cfg.model.modality, time_dim=TUPLE_TIME_DIM)
        with self.rt.autocast():
            out = self.net(x)
        z_a, z_b = out.embeddings[:, 0].float(), out.embeddings[:, 1].float()
        idx = self.bank.draw_indices(index, self.negatives_rng)
        out_a, out_b = self.bank.logits(z_a, z_b, idx)
        loss_pretext = F.cross_entropy(out.logits.float(), labels)
        loss_nce = nce_softmax_loss(out_a, out_b)
        loss = loss_pretext + self.cfg.contrast.weight * loss_nce
        metrics = {
            "loss_pretext": float(loss_pretext.detach()),
            "loss_nce": float(loss_nce.detach()),
            "pretext_acc": float((out.logits.argmax(1) == labels).float().mean()),
            "nce_pos_logit": float(out_a[:, 0].detach().mean() * self.bank.temperature),
        }
        kd = self.cfg.distill
        if self.teacher is not None and kd.alpha > 0:
            with torch.no_grad(), self.rt.autocast():
                t_out = self.teacher(x)
            loss_kd = self._kd_term(out, t_out)
            loss = loss + kd.alpha * loss_kd
            metrics["loss_kd"] = float(loss_kd.detach())
            metrics["teacher_agreement"] = float((out.logits.argmax(1) == t_out.logits.argmax(1)).float().mean())
        metrics["loss"] = float(loss.detach())
        # As in the reference, the bank moves right after its logits were read; indexing copied them,
        # so this in-place update does not disturb the graph.
        self.bank.update(z_a, z_b, index)
        return StepOutput(loss=loss, metrics=metrics, samples=int(labels.shape[0]))

    def _kd_term(self, student: PCLOutputs, teacher: PCLOutputs) -> Tensor:
        """The weighted sum of the configured KD terms (ml.kd_terms)."""
        terms = [weight * KD_TERMS[name].loss_function()(student, teacher, self.cfg)
                 for name, weight in self.cfg.distill.terms.items() if weight > 0]
        return torch.stack(terms).sum()

    def end_of_epoch(self, epoch: int, *, last: bool) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self._validate is not None:
            metrics.update(self._validate(self.net, epoch, last))
        if self._evaluate is not None:
            metrics.update(self._evaluate(self.net.backbone, epoch, last))
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "bank": self.bank.state_dict(), "negatives_rng": self.negatives_rng.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.bank.load_state_dict(state["bank"])
        self.negatives_rng.set_state(state["negatives_rng"])

    def validation_losses(self, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        """Mean pretext CE / accuracy over a fixed tuple list (PCL validates on the test list)."""
        self.net.eval()
        modality = self.cfg.model.modality
        loss, acc = mean_loss_and_accuracy(
            lambda x: self.net(prepare_input(x, modality=modality, time_dim=TUPLE_TIME_DIM)).logits,
            batches, rt=self.rt, input_key="clips",
        )
        self.net.train()
        return {"val_loss": loss, "val_pretext_acc": acc}
