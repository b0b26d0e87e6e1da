"""A per-process LRU cache of whole decoded videos, bounded in bytes.

Decoding is the largest single cost of a training step when the network is small (tiny widths on
CPU, data fractions such as 2%): every epoch decodes the same few hundred videos again. With the
cache each video is decoded once, in full, at the decode size, and later clips are slices of it.

Off by default (``DataConfig.cache_mb = 0``): on UCF101-scale data a whole decoded video is ~12 MB
and the set does not fit, so selective decoding of only the frames a sample needs is cheaper. Each
DataLoader worker process holds its own cache (they are separate processes), so the memory bound is
``cache_mb`` per process. Results are bit-identical with and without the cache.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ml.data.decord_reader import open_video


class DecodedVideoCache:
    """Whole videos as uint8 T×H×W×3 arrays, keyed by (path, width, height); evicts least recently used."""

    def __init__(self, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError(f"cache budget must be >= 0 bytes, got {budget_bytes}")
        self.budget_bytes = int(budget_bytes)
        self._videos: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()
        self._oversize: set[tuple[str, int, int]] = set()  # decoded once, larger than the whole budget
        self.bytes_used = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._videos)

    def may_hold(self, path: str, *, width: int, height: int) -> bool:
        """False for a video already found larger than the whole budget: decode what you need instead."""
        return (path, width, height) not in self._oversize

    def frames(self, path: str, *, width: int, height: int) -> np.ndarray:
        """Every frame of the video at the given decode size; decoded on first use."""
        key = (path, width, height)
        video = self._videos.get(key)
        if video is not None:
            self.hits += 1
            self._videos.move_to_end(key)
            return video
        self.misses += 1
        with open_video(path, width=width, height=height) as reader:
            video = reader.read(range(reader.num_frames))
        video.setflags(write=False)  # callers get slices of the cached array; nobody may change it
        if video.nbytes > self.budget_bytes:
            self._oversize.add(key)
        else:
            self._videos[key] = video
            self.bytes_used += video.nbytes
            while self.bytes_used > self.budget_bytes:
                _, evicted = self._videos.popitem(last=False)
                self.bytes_used -= evicted.nbytes
        return video
