"""Video decoding through decord; the only module in the project that imports decord.

(PyAV is used here only for header metadata and as a fallback for a decord 0.6 bug, see ``VideoFile.read``.)

Frames are decoded straight at the network's decode size (decord's ``width``/``height``; libswscale
resizes inside the decoder), never decoded at full size and resized in Python. Results are uint8
numpy arrays shaped T×H×W×3 (RGB).

decord failures become the typed errors of :mod:`ml.errors`:

* file missing                -> :class:`VideoError` ("file not found")
* zero bytes / zero frames    -> :class:`EmptyVideoError`
* decord cannot open it       -> :class:`NotAVideoError`
* opens, but a frame fails    -> :class:`CorruptVideoError`
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

import decord

from ml.errors import CorruptVideoError, EmptyVideoError, NotAVideoError, VideoError, without_paths

decord.logging.set_level(decord.logging.QUIET)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoMeta:
    frames: int
    fps: float
    width: int
    """native frame width in pixels"""
    height: int
    """native frame height in pixels"""

    @property
    def seconds(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


def _check_file(path: str) -> None:
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise VideoError(path, "file not found") from None
    except OSError as exc:
        raise VideoError(path, f"cannot read the file ({exc.strerror or type(exc).__name__})") from None
    if size == 0:
        raise EmptyVideoError(path, "the file is empty (0 bytes)")


class VideoFile:
    """An open video, decoded at ``width``×``height`` (-1, -1: native size).

    ``num_threads`` is decord's decoder thread count; 1 suits DataLoader workers and scan threads.
    """

    def __init__(self, path: str | Path, *, width: int = -1, height: int = -1, num_threads: int = 1) -> None:
        self.path = str(path)
        _check_file(self.path)
        try:
            self._reader = decord.VideoReader(self.path, width=width, height=height, num_threads=num_threads)
        except (RuntimeError, decord.DECORDError) as exc:
            raise NotAVideoError(self.path, f"not a video decord can open ({_short(exc, self.path)})") from None
        self.num_frames = len(self._reader)
        if self.num_frames <= 0:
            raise EmptyVideoError(self.path, "the video has no frames")

    def __len__(self) -> int:
        return self.num_frames

    @property
    def fps(self) -> float:
        return float(self._reader.get_avg_fps())

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 T×H×W×3; each distinct frame decoded once."""
        idx = np.asarray(list(indices), dtype=np.int64)
        if idx.size == 0:
            raise ValueError("no frame indices given")
        if idx.min() < 0 or idx.max() >= self.num_frames:
            raise IndexError(f"{self.path}: frame indices must be in [0, {self.num_frames}), got {idx.min()}..{idx.max()}")
        unique, inverse = np.unique(idx, return_inverse=True)
        try:
            batch = self._reader.get_batch(unique.tolist())
            frames = batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)
        except (RuntimeError, decord.DECORDError) as exc:
            if "DECORDArrayCopyFromTo" not in str(exc):
                raise CorruptVideoError(self.path, f"frames fail to decode ({_short(exc, self.path)})") from None
            # decord 0.6 bug: without rescaling (decode size == native size) it cannot copy frames whose
            # row length in bytes is not 64-aligned (e.g. 48 or 171 pixels wide). Decode those with PyAV.
            frames = _read_pyav(self.path, unique.tolist())
        if frames.ndim != 4 or frames.shape[0] != unique.size:
            raise CorruptVideoError(self.path, f"decoder returned {frames.shape[0]} frames for {unique.size} requested")
        return frames[inverse] if unique.size != idx.size or not np.array_equal(unique, idx) else frames

    def close(self) -> None:
        self._reader = None  # type: ignore[assignment]

    def __enter__(self) -> "VideoFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_pyav(path: str, indices: list[int]) -> np.ndarray:
    """Sorted distinct ``indices`` decoded sequentially with PyAV at native size (fallback only)."""
    import av

    wanted = set(indices)
    out: dict[int, np.ndarray] = {}
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            for n, frame in enumerate(container.decode(stream)):
                if n in wanted:
                    out[n] = frame.to_ndarray(format="rgb24")
                if n >= indices[-1]:
                    break
    except (av.FFmpegError, OSError) as exc:
        raise CorruptVideoError(path, f"frames fail to decode ({_short(exc, path)})") from None
    if len(out) != len(indices):
        raise CorruptVideoError(path, f"only {len(out)} of {len(indices)} requested frames could be decoded")
    return np.stack([out[i] for i in indices])


def native_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the container header, without decoding."""
    import av

    _check_file(str(path))
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return int(stream.codec_context.width), int(stream.codec_context.height)
    except (av.FFmpegError, OSError, IndexError) as exc:
        raise NotAVideoError(str(path), f"no readable video stream ({_short(exc, str(path))})") from None


_LOCATION = re.compile(r"\[\d\d:\d\d:\d\d\]\s*\S*?\.(?:cc|cpp|cxx|c|h|hpp):\d+:\s*")  # "[hh:mm:ss] src/x.cc:83: "
_KNOWN = (("cannot find video stream", "no video stream in the file"),
          ("Invalid data found when processing input", "invalid data: not a video, or a damaged one"),
          ("Error reading", "the container cannot be parsed: damaged, truncated or not a video"))


def _short(exc: BaseException, path: str | None = None) -> str:
    """A decoder failure in words for the user: no decoder build paths, source locations or server file paths
    (the full message goes to the log)."""
    raw = str(exc).strip()
    log.debug("decoder error on %s: %s", path, raw)
    for needle, words in _KNOWN:
        if needle in raw:
            return words
    lines = [ln for ln in raw.splitlines() if ln.strip()]
    line = lines[-1] if lines else type(exc).__name__
    if path:
        line = line.replace(path, "the file").replace(os.path.basename(path), "the file")
    line = without_paths(_LOCATION.sub("", line))
    return line[-160:] or type(exc).__name__


def open_video(path: str | Path, *, width: int = -1, height: int = -1, num_threads: int = 1) -> VideoFile:
    """Open ``path`` for decoding at ``width``×``height`` (e.g. ClipSpec.resize_w × resize_h)."""
    return VideoFile(path, width=width, height=height, num_threads=num_threads)


def read_frames(path: str | Path, indices: Sequence[int], *, width: int = -1, height: int = -1) -> np.ndarray:
    """Decode only ``indices`` of ``path`` at ``width``×``height``: uint8 T×H×W×3."""
    with open_video(path, width=width, height=height) as video:
        return video.read(indices)


def count_frames(path: str | Path, *, verify: bool = True) -> int:
    """Number of frames; with ``verify`` the first and last frames are decoded (tiny) to prove they exist."""
    with open_video(path, width=32, height=32) as video:
        if verify:
            video.read([0, video.num_frames - 1])
        return video.num_frames


def probe(path: str | Path) -> VideoMeta:
    """Frame count and fps (decord) and native size (container header); decodes nothing."""
    with open_video(path, width=32, height=32) as video:
        frames, fps = video.num_frames, video.fps
    width, height = native_size(path)
    return VideoMeta(frames=frames, fps=fps, width=width, height=height)
