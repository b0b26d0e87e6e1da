"""Checkpoint files: atomic writes, safe loads, typed load errors, and RNG state capture for exact resume.

Every checkpoint this project writes holds only tensors and plain data (dicts, lists, tuples, str, int,
float, bool, None): RNG states are stored as tensors and lists, configs as JSON-able dicts. So every load
uses ``torch.load(weights_only=True)``, which refuses a pickle that would construct any other object: a
crafted file (``__reduce__`` payloads) is a :class:`CheckpointError`, never executed.

:func:`export_weights` writes the download format: the model's weights plus JSON-able metadata
(backbone, width, modality, clip, classes), without optimizer or RNG state.
"""

from __future__ import annotations

import errno
import os
import pickle
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
WEIGHTS_NAME = "weights.pt"  # the download: weights + metadata (export_weights)
FORMAT_VERSION = 2  # 2: RNG state as tensors/lists (1 pickled numpy arrays: refused by the safe loader)
WEIGHTS_FORMAT = "kdvideo-weights"
# metadata copied into a weights export (all JSON-able)
EXPORT_META = ("kind", "backbone", "width", "modality", "clip", "classes", "labels", "results", "config_hash",
               "code_version", "teacher_backbone", "teacher_width", "source_kind")


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


def safe_load(path: Path, *, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` that only rebuilds tensors and plain data; anything else is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"checkpoint {path} was refused: it holds objects other than tensors and plain data, which could run "
            "code when loaded; only weights-only checkpoints written by this project (format 2, or a weights.pt "
            "export) can be used; checkpoints written before format 2 must be re-trained"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - truncated, not a torch file, wrong zip layout...
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__})") from exc


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    payload = safe_load(path, map_location=map_location)
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path} is not a checkpoint written by this tool")
    return payload


def export_weights(checkpoint: Path, dest: Path) -> Path:
    """A weights-only file from a training checkpoint: ``{"format", "state_dict", **metadata}``.

    Loads with ``torch.load(dest, weights_only=True)``; ``state_dict`` is the task's network (the PCL
    net for pretrain/distill, the classifier for finetune)."""
    state = load_checkpoint(checkpoint)
    task = state.get("task")
    if not isinstance(task, dict):
        raise CheckpointError(f"{checkpoint} holds no model weights")
    weights = task.get("model", task.get("net"))
    payload = {"format": WEIGHTS_FORMAT, "format_version": FORMAT_VERSION, "state_dict": weights,
               **{key: state[key] for key in EXPORT_META if key in state}}
    return save_checkpoint(dest, payload)


def capture_rng() -> dict[str, Any]:
    """Every RNG's state as tensors and lists (loadable with weights_only=True)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npy = state["numpy"]
    np.random.set_state((npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
