"""Checkpoint files: atomic writes, typed load errors, and RNG state capture for exact resume."""

from __future__ import annotations

import errno
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.errors import CheckpointError

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"  # the epoch with the lowest validation loss (PCL keeps it; fine-tuning tests it)
FORMAT_VERSION = 1


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write to a temporary file then rename, so a crash mid-write never leaves a torn checkpoint. The temporary
    name is unique (mkstemp), so two writers (two attempts of a job, even on hosts whose pids collide) never
    write into each other's file; a failed write removes its temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o644)  # as a plain open() would leave it (mkstemp makes 0600): the API serves it
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format_version": FORMAT_VERSION, **payload}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        # torch's zip writer reports a full disk as "[enforce fail at inline_container.cc] unexpected pos":
        # name the cause while the partial file still fills the disk, then clean up
        full = isinstance(exc, (OSError, RuntimeError)) and _disk_full(path.parent)
        tmp.unlink(missing_ok=True)
        if full and not (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
            raise OSError(errno.ENOSPC, f"no space left on device writing checkpoint {path.name}") from exc
        raise
    return path


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 2**20
    except OSError:
        return False


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path} is not a checkpoint written by this tool")
    return payload


def capture_rng() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
