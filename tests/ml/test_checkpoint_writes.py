"""Checkpoint writes (issue 9): two writers of the same checkpoint never share a temporary file, and a failed
write names a full disk and leaves nothing behind."""

from __future__ import annotations

import errno
import subprocess
import threading
from pathlib import Path

import pytest
import torch

from ml.engine.checkpoint import load_checkpoint, save_checkpoint


def test_concurrent_writers_never_clobber_each_others_temporary_file(tmp_path: Path) -> None:
    """Two attempts of a job writing checkpoint.pt at once (before the old one learns it was superseded), here two
    threads of one process, so a pid-named temporary file would be shared: every write completes, the file
    left is one writer's whole checkpoint, and no temporary file remains."""
    path = tmp_path / "checkpoint.pt"
    errors: list[BaseException] = []

    def writer(tag: int) -> None:
        try:
            for i in range(15):
                save_checkpoint(path, {"writer": tag, "i": i, "w": torch.full((200_000,), float(tag))})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    state = load_checkpoint(path)
    assert state["writer"] in (1, 2) and bool((state["w"] == float(state["writer"])).all())
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_full_disk_is_named_and_leaves_no_partial_file(tmp_path: Path) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with pytest.raises(OSError) as caught:
            save_checkpoint(folder / "checkpoint.pt", {"w": torch.zeros(1_000_000)})
        assert caught.value.errno == errno.ENOSPC and "no space left on device" in str(caught.value)
        assert list(folder.iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
