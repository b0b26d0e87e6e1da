"""A malicious "checkpoint": a torch file whose unpickling would run code (creates a marker directory)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


class _Payload:
    """Unpickling this calls ``os.mkdir(marker)``: proof that the file's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.marker,))


def write_crafted_checkpoint(path: Path, marker: Path, *, kind: str = "finetune") -> Path:
    """Looks like one of ours (format_version, kind, labels...) but carries a code-running object."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = _Payload(marker)  # one object (pickled once, memoised) under both task keys
    torch.save({"format_version": 2, "kind": kind, "labels": ["a", "b"], "backbone": "r3d", "width": 0.125,
                "clip": {}, "task": {"model": payload, "net": payload}}, path)
    return path
