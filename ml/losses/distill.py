"""Knowledge-distillation terms: alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) (Hinton et al.) and the terms
``ml.kd_terms`` registers, each ``(student: PCLOutputs, teacher: PCLOutputs, cfg: PretrainConfig) -> Tensor``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from ml.config import PretrainConfig
    from ml.models.pcl_net import PCLOutputs


def kd_kl_loss(student_logits: Tensor, teacher_logits: Tensor, *, temperature: float, t_squared: bool = True) -> Tensor:
    """Batch-mean KL from the teacher's softened distribution to the student's.

    The teacher tensor is detached, so no gradient can reach it even if the caller forgot no_grad.
    """
    t = temperature
    log_p_student = F.log_softmax(student_logits.float() / t, dim=-1)
    p_teacher = F.softmax(teacher_logits.detach().float() / t, dim=-1)
    loss = F.kl_div(log_p_student, p_teacher, reduction="batchmean")
    return loss * (t * t) if t_squared else loss


def in_batch_similarity(z_a: Tensor, z_b: Tensor, *, temperature: float) -> Tensor:
    """B×B cross-view cosine similarities / T: row i is clip 0 of video i against clip 2 of every video.

    Used to distil the contrastive distribution without sharing the teacher's memory bank, whose
    slots would not line up when the student trains on another subset of the data.
    """
    return (z_a @ z_b.t()) / temperature


def contrastive_kd_loss(
    student: tuple[Tensor, Tensor], teacher: tuple[Tensor, Tensor], *, temperature: float, nce_temperature: float, t_squared: bool = True
) -> Tensor:
    """KD between in-batch contrastive distributions, averaged over both view directions."""
    s = in_batch_similarity(student[0], student[1], temperature=nce_temperature)
    with torch.no_grad():
        t = in_batch_similarity(teacher[0], teacher[1], temperature=nce_temperature)
    forward = kd_kl_loss(s, t, temperature=temperature, t_squared=t_squared)
    backward = kd_kl_loss(s.t(), t.t(), temperature=temperature, t_squared=t_squared)
    return 0.5 * (forward + backward)


def pretext_term(student: PCLOutputs, teacher: PCLOutputs, cfg: PretrainConfig) -> Tensor:
    """KD on the 5-way VCP pretext logits."""
    kd = cfg.distill
    return kd_kl_loss(student.logits, teacher.logits, temperature=kd.temperature, t_squared=kd.t_squared)


def contrastive_term(student: PCLOutputs, teacher: PCLOutputs, cfg: PretrainConfig) -> Tensor:
    """KD on the in-batch contrastive distribution of the first and last clip's projections."""
    kd = cfg.distill
    s = (student.embeddings[:, 0].float(), student.embeddings[:, 1].float())
    t = (teacher.embeddings[:, 0].float(), teacher.embeddings[:, 1].float())
    return contrastive_kd_loss(s, t, temperature=kd.temperature, nce_temperature=cfg.contrast.temperature,
                               t_squared=kd.t_squared)


def _at_least_float32(x: Tensor) -> Tensor:
    return x if x.dtype == torch.float64 else x.float()


def feature_similarity_term(student: PCLOutputs, teacher: PCLOutputs, cfg: PretrainConfig) -> Tensor:
    """Similarity-preserving KD (after Tung & Mori, 2019) on the pooled backbone features of every clip: the mean
    squared difference between the student's and the teacher's (B*n)x(B*n) cosine-similarity matrices. It compares
    relations between clips, not features, so student and teacher may have different widths."""
    s = F.normalize(_at_least_float32(student.features.flatten(0, 1)), dim=1)
    t = F.normalize(_at_least_float32(teacher.features.detach().flatten(0, 1)), dim=1)
    return F.mse_loss(s @ s.t(), t @ t.t())
