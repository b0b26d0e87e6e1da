"""DataLoader construction with reproducible order and per-epoch sample randomness.

The shuffle order of epoch e is a permutation seeded by (seed, e), so resuming at epoch e gives
the same order as an uninterrupted run. ``VideoLoader.set_epoch(e)`` sets both the order and the
dataset's epoch; call it before iterating each epoch.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sized

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ml.data.clip_sampling import seed_for


class EpochShuffleSampler(Sampler[int]):
    """A permutation of ``range(n)`` seeded by (seed, epoch); identity order when ``shuffle`` is False.

    ``skip`` drops the first indices of the epoch's order: a run resumed mid-epoch sees exactly the
    samples the interrupted run had not trained on yet.
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int) -> None:
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, *, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator()
        g.manual_seed(seed_for(self.seed, self.epoch, -1, 0))
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.skip :])

    def __len__(self) -> int:
        return max(0, self.n - self.skip)


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)


class VideoLoader(DataLoader):  # type: ignore[type-arg]
    """A DataLoader with ``set_epoch`` (sampler order + dataset randomness)."""

    def set_epoch(self, epoch: int, *, skip: int = 0) -> None:
        sampler = self.sampler
        if isinstance(sampler, EpochShuffleSampler):
            sampler.set_epoch(epoch, skip=skip)
        set_dataset_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_dataset_epoch):
            set_dataset_epoch(epoch)


def make_loader(
    dataset: Dataset[Any],
    *,
    batch_size: int,
    shuffle: bool,
    workers: int,
    seed: int,
    drop_last: bool,
    pin_memory: bool = False,
    collate_fn: Any = None,
) -> VideoLoader:
    """A seeded loader; ``persistent_workers`` when ``workers > 0``; each worker runs 1 torch thread."""
    if not isinstance(dataset, Sized):
        raise TypeError("make_loader needs a map-style dataset with __len__")
    generator = torch.Generator()
    generator.manual_seed(seed_for(seed, 0, -2, 0))
    extra: dict[str, Any] = {}
    if workers > 0:
        extra.update(persistent_workers=True, worker_init_fn=_worker_init, prefetch_factor=2)
    loader = VideoLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochShuffleSampler(len(dataset), shuffle=shuffle, seed=seed),
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=generator,
        collate_fn=collate_fn,
        **extra,
    )
    for tracked in _tracking:
        tracked.append(loader)
    return loader


def release_loader(loader: Any) -> None:
    """Shut down a loader's persistent worker processes now (each holds its own decoded-video cache); a no-op
    for None or a loader without workers. The loader can still be iterated again (it starts new workers)."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is None:
        return
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if callable(shutdown):
        shutdown()
    loader._iterator = None


_tracking: list[list[VideoLoader]] = []


@contextmanager
def released_loaders() -> Iterator[None]:
    """Every loader made inside the block has its worker processes shut down when the block ends, however it
    ends (a finished run must not leave persistent DataLoader workers, ~350 MB each, under an idle service worker)."""
    made: list[VideoLoader] = []
    _tracking.append(made)
    try:
        yield
    finally:
        _tracking.remove(made)
        for loader in made:
            release_loader(loader)
