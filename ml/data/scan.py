"""Open every video once to learn its frame count and weed out the unusable ones.

Frame counts land in ``DatasetIndex.frames`` (rel -> frames). A video that is missing, unreadable,
corrupt or shorter than ``min_frames`` is removed from train/test and recorded in
``DatasetIndex.problems`` with a reason; scanning never raises for a bad video.

An optional JSON cache (rel -> [size, mtime_ns, frames]) makes a rescan of an unchanged dataset
(e.g. on resume) nearly free; only readable videos are cached.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from ml.data.decord_reader import count_frames
from ml.data.splits import OUTSIDE_ROOT, DatasetIndex, Problem, VideoItem, inside
from ml.errors import VideoError

log = logging.getLogger(__name__)


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _load_cache(cache: Path | None) -> dict[str, list[int]]:
    if cache is None or not cache.is_file():
        return {}
    try:
        data = json.loads(cache.read_text())
        return {str(k): [int(x) for x in v] for k, v in data.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        log.warning("ignoring unreadable scan cache %s", cache)
        return {}


def _probe(item: VideoItem, verify: bool) -> int | str:
    """Frame count, or a human-readable reason the video cannot be used (no server paths in it)."""
    try:
        return count_frames(item.path, verify=verify)
    except VideoError as exc:
        return exc.reason
    except Exception as exc:  # a scan must go on whatever one file does
        log.warning("scan: %s unreadable: %s: %s", item.path, type(exc).__name__, exc)
        return f"unreadable ({type(exc).__name__})"


def scan_index(
    index: DatasetIndex,
    *,
    min_frames: int,
    workers: int = 4,
    verify: bool = True,
    cache: Path | None = None,
) -> DatasetIndex:
    """Return a copy of ``index`` with ``frames`` filled and bad videos moved to ``problems``.

    ``verify`` decodes the first and last frame of each video (small) to catch corrupt files whose
    header still opens. ``min_frames`` is typically ``PCLTupleDataset.min_frames(clip, pretext)``
    or ``clip.frames``.
    """
    items = {item.rel: item for item in [*index.train, *index.test]}
    cached = _load_cache(cache)
    frames: dict[str, int] = {}
    reasons: dict[str, str] = {}
    todo: list[VideoItem] = []
    stats: dict[str, tuple[int, int]] = {}
    root = Path(os.path.realpath(index.root))
    for rel, item in items.items():
        if not inside(item.path, root):  # a link out of the dataset (even one made after indexing): never opened
            reasons[rel] = OUTSIDE_ROOT
            continue
        key = _stat_key(item.path)
        if key is None:
            reasons[rel] = "missing: file not found"
            continue
        stats[rel] = key
        hit = cached.get(rel)
        if hit is not None and len(hit) == 3 and (hit[0], hit[1]) == key:
            frames[rel] = hit[2]
        else:
            todo.append(item)

    if todo:
        if workers > 1 and len(todo) > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scan") as pool:
                results = list(pool.map(lambda it: _probe(it, verify), todo))
        else:
            results = [_probe(it, verify) for it in todo]
        for item, result in zip(todo, results):
            if isinstance(result, int):
                frames[item.rel] = result
            else:
                reasons[item.rel] = result

    if cache is not None:
        payload = {rel: [*stats[rel], n] for rel, n in sorted(frames.items()) if rel in stats}
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(cache.suffix + ".tmp")
            tmp.write_text(json.dumps(payload))
            tmp.replace(cache)
        except OSError as exc:
            log.warning("cannot write scan cache %s: %s", cache, exc)

    for rel, n in frames.items():
        if n < min_frames:
            reasons[rel] = f"too short: {n} frames, needs at least {min_frames}"
    good = {rel: n for rel, n in frames.items() if rel not in reasons}
    problems = list(index.problems) + [Problem(rel, reasons[rel]) for rel in items if rel in reasons]
    if reasons:
        log.warning("scan: %d of %d videos unusable, e.g. %s", len(reasons), len(items), problems[-1])
    return replace(
        index,
        train=[it for it in index.train if it.rel in good],
        test=[it for it in index.test if it.rel in good],
        problems=problems,
        frames=good,
    )
