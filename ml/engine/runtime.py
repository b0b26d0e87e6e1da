"""Device, precision and seeding decisions made once per run from RuntimeConfig."""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from typing import ContextManager

import numpy as np
import torch

from ml.config import RuntimeConfig


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp: bool
    channels_last: bool
    pin_memory: bool

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> ContextManager[object]:
        """bf16 autocast on CUDA when enabled; a no-op elsewhere (CPU runs stay fp32 and deterministic)."""
        if self.amp and self.is_cuda:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, non_blocking=self.pin_memory)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"runtime.device={name!r} but CUDA is not available on this machine; use 'cpu' or 'auto'")
    return device


def resolve_runtime(cfg: RuntimeConfig, *, pin_memory: bool | None = None) -> Runtime:
    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    if cfg.threads and not cuda:
        torch.set_num_threads(cfg.threads)
    return Runtime(
        device=device,
        amp=cuda if cfg.amp is None else cfg.amp and cuda,
        channels_last=cuda if cfg.channels_last is None else cfg.channels_last,
        pin_memory=cuda if pin_memory is None else pin_memory and cuda,
    )


def seed_everything(seed: int, *, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True
