"""The registry of knowledge-distillation terms (torch-free: the config validates names against it).

A distilling run's KD loss is the weighted sum ``sum_i w_i * term_i(student, teacher, cfg)`` over
``distill.terms`` (as torchdistill's weighted sum of loss terms), scaled by ``distill.alpha`` in the objective
``L = CE_pretext + w_con * L_nce + alpha * L_kd`` (docs/method.md). Each term is a function in ``ml.losses.distill``
taking ``(student: PCLOutputs, teacher: PCLOutputs, cfg: PretrainConfig) -> Tensor`` (a scalar).

Adding a term: its function in ml/losses/distill.py and one entry in ``_ENTRIES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KDTerm:
    name: str
    description: str
    function: str  # "module:function"

    def loss_function(self) -> Any:
        from ml.kinds import import_object

        return import_object(self.function)


_ENTRIES = (
    KDTerm("pretext", "KL between the softened 5-way VCP pretext logits (T^2-scaled, Hinton)",
           "ml.losses.distill:pretext_term"),
    KDTerm("contrastive", "KL between the in-batch contrastive distributions (clip 0 vs clip 2 of every video)",
           "ml.losses.distill:contrastive_term"),
    KDTerm("feature_similarity", "MSE between the cosine-similarity matrices of pooled backbone features over the "
           "batch's clips (similarity-preserving KD, Tung & Mori 2019; any student/teacher widths)",
           "ml.losses.distill:feature_similarity_term"),
)

KD_TERMS: dict[str, KDTerm] = {t.name: t for t in _ENTRIES}

# distill.target (deprecated) -> the equivalent distill.terms; stored job configs and user YAML keep working.
LEGACY_TARGETS: dict[str, dict[str, float]] = {
    "pretext": {"pretext": 1.0},
    "contrastive": {"contrastive": 1.0},
    "both": {"pretext": 1.0, "contrastive": 1.0},
}


def legacy_target(terms: dict[str, float]) -> str | None:
    """The deprecated ``target`` spelling of ``terms``, when there is one."""
    for target, spelled in LEGACY_TARGETS.items():
        if terms == spelled:
            return target
    return None
