"""Loss terms of the one PCL+KD objective: L = CE_pretext + w_con*L_nce + alpha*L_kd."""

from ml.losses.contrastive import NCEMemoryBank, nce_softmax_loss
from ml.losses.distill import contrastive_kd_loss, in_batch_similarity, kd_kl_loss

__all__ = ["NCEMemoryBank", "nce_softmax_loss", "kd_kl_loss", "in_batch_similarity", "contrastive_kd_loss"]
