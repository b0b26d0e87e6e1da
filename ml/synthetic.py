"""Procedurally rendered action videos in the UCF101 layout, for tests, demos and smoke runs.

``generate_dataset(root)`` writes::

    root/videos/<ClassName>/v_<ClassName>_gXX_cYY.avi   (real encoded video via PyAV)
    root/splits/classInd.txt, trainlist01.txt, testlist01.txt   (CRLF, like UCF101)

Each class is a motion: one shape moving up/down/left/right, growing or shrinking, blinking slowly
(two colours alternating) or fast, rotating or orbiting clockwise/counter-clockwise, swinging horizontally/vertically. Shape,
colours, size, speed, phase, start position, orientation, background (solid / gradient / texture)
and noise are drawn per video from distributions shared by all classes, so a single frame does not
reveal the class; only the change across frames does.

The first six classes (the default) are invariant to horizontal flips (up/down, grow/shrink,
slow/fast blinking), so PCL's random flip cannot turn one class into another; left/right and
clockwise/counter-clockwise pairs come later.

Like UCF101, whole groups go to the test list: the first ``max(1, round(groups·7/25))`` groups
(g01–g07 of 25 in UCF101 split 1).
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import av
import numpy as np

from ml.synthetic_spec import SynthesizeConfig, avi_bit_rate

log = logging.getLogger(__name__)

SHAPES = ("square", "triangle", "bar", "cross", "ellipse")
BACKGROUNDS = ("solid", "gradient", "texture")


@dataclass
class _Scene:
    """Per-video random draws shared by every action; actions read what they need."""

    height: int
    width: int
    rng: np.random.Generator
    shape: str
    size: float
    angle: float
    cx: float
    cy: float
    speed: float  # 0..1, scaled by each action into its own units
    phase: float  # 0..1
    scale: float  # 0.45..1.55; every class draws it, so size alone tells nothing

    def state(self) -> dict[str, float]:
        return {"cx": self.cx, "cy": self.cy, "angle": self.angle, "scale": self.scale, "alt": 0.0}


Action = Callable[[_Scene, int], dict[str, float]]


def _wrap(p: float, length: float, margin: float) -> float:
    """Toroidal position that leaves one side and re-enters on the other."""
    return (p + margin) % (length + 2 * margin) - margin


def _move(dx: float, dy: float) -> Action:
    def act(s: _Scene, t: int) -> dict[str, float]:
        v = (0.6 + 1.0 * s.speed) * min(s.height, s.width) / 48.0  # pixels per frame
        st = s.state()
        margin = 0.8 * s.size * s.scale
        st["cx"] = _wrap(s.cx + dx * v * t, s.width, margin)
        st["cy"] = _wrap(s.cy + dy * v * t, s.height, margin)
        return st

    return act


def _rotate(direction: int) -> Action:
    def act(s: _Scene, t: int) -> dict[str, float]:
        omega = math.radians(4.0 + 6.0 * s.speed)  # per frame; y points down, so +angle is clockwise on screen
        st = s.state()
        st["angle"] = s.angle + direction * omega * t
        return st

    return act


def _scale(direction: int) -> Action:
    def act(s: _Scene, t: int) -> dict[str, float]:
        rate = 1.0 / (40.0 - 24.0 * s.speed)  # one grow (shrink) cycle every 16-40 frames
        f = ((s.scale - 0.45) / 1.1 + direction * rate * t) % 1.0
        st = s.state()
        st["scale"] = 0.45 + 1.1 * f
        return st

    return act


def _blink(fast: bool) -> Action:
    """The shape flips between two colours (never disappears, so a frame shows nothing special)."""

    def act(s: _Scene, t: int) -> dict[str, float]:
        period = (3.0 + 2.0 * s.speed) if fast else (10.0 + 6.0 * s.speed)
        st = s.state()
        st["alt"] = 0.0 if ((t / period + s.phase) % 1.0) < 0.5 else 1.0
        return st

    return act


def _orbit(direction: int) -> Action:
    def act(s: _Scene, t: int) -> dict[str, float]:
        radius = (0.15 + 0.12 * s.phase) * min(s.height, s.width)
        omega = math.radians(6.0 + 8.0 * s.speed)
        ox = min(max(s.cx, radius), s.width - radius)
        oy = min(max(s.cy, radius), s.height - radius)
        phi = 2 * math.pi * s.phase + direction * omega * t
        st = s.state()
        st["cx"], st["cy"] = ox + radius * math.cos(phi), oy + radius * math.sin(phi)
        return st

    return act


def _swing(horizontal: bool) -> Action:
    def act(s: _Scene, t: int) -> dict[str, float]:
        period = 12.0 + 12.0 * s.speed
        amp = (0.15 + 0.12 * s.phase) * (s.width if horizontal else s.height)
        offset = amp * math.sin(2 * math.pi * (t / period + s.phase))
        st = s.state()
        if horizontal:
            st["cx"] = min(max(s.cx, amp), s.width - amp) + offset
        else:
            st["cy"] = min(max(s.cy, amp), s.height - amp) + offset
        return st

    return act


ACTIONS: dict[str, Action] = {
    "MoveUp": _move(0, -1),
    "MoveDown": _move(0, 1),
    "Expand": _scale(1),
    "Shrink": _scale(-1),
    "BlinkSlow": _blink(False),
    "BlinkFast": _blink(True),
    "SwingHorizontal": _swing(True),
    "SwingVertical": _swing(False),
    "MoveLeft": _move(-1, 0),
    "MoveRight": _move(1, 0),
    "RotateClockwise": _rotate(1),
    "RotateCounterClockwise": _rotate(-1),
    "OrbitClockwise": _orbit(1),
    "OrbitCounterClockwise": _orbit(-1),
}
"""Action generators in class order; ``classes=N`` takes the first N."""


def action_names(classes: int | None = None) -> list[str]:
    names = list(ACTIONS)
    if classes is None:
        return names
    if not 1 <= classes <= len(names):
        raise ValueError(f"classes must be between 1 and {len(names)} (the number of synthetic actions), got {classes}")
    return names[:classes]


# ---------------------------------------------------------------------------------------------
# Rendering


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av_ = np.abs(u), np.abs(v)
    if shape == "square":
        return np.maximum(au, av_) <= 1.0
    if shape == "bar":
        return (au <= 1.35) & (av_ <= 0.42)
    if shape == "ellipse":
        return (u / 1.35) ** 2 + (v / 0.6) ** 2 <= 1.0
    if shape == "cross":
        return ((au <= 1.1) & (av_ <= 0.33)) | ((au <= 0.33) & (av_ <= 1.1))
    if shape == "triangle":  # points along +u, so its orientation is visible
        return (u >= -0.8) & (av_ <= 0.9 * (1.0 - u) / 1.8)
    raise ValueError(f"unknown shape {shape!r}")


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3)


def _contrasting(rng: np.random.Generator, against: np.ndarray) -> np.ndarray:
    """A random colour far enough from ``against`` to stay visible."""
    colour = _colour(rng)
    for _ in range(50):
        if np.abs(colour - against).sum() > 200:
            break
        colour = _colour(rng)
    return colour


def _background(rng: np.random.Generator, kind: str, h: int, w: int, base: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "solid":
        return np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    if kind == "gradient":
        other = _colour(rng)
        theta = rng.uniform(0, 2 * np.pi)
        proj = np.cos(theta) * xx / w + np.sin(theta) * yy / h
        a = (proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6)
        return (base * (1 - a[..., None]) + other * a[..., None]).astype(np.float32)
    # texture: two random plane waves per channel around the base colour
    out = np.broadcast_to(base, (h, w, 3)).astype(np.float32).copy()
    for _ in range(2):
        k = rng.uniform(0.15, 0.6, size=2) * rng.choice([-1, 1], size=2)
        amp = rng.uniform(10, 35, size=3)
        out += amp * np.sin(k[0] * xx + k[1] * yy + rng.uniform(0, 2 * np.pi))[..., None]
    return out


def render_video(
    action: str, *, frames: int, width: int, height: int, rng: np.random.Generator
) -> np.ndarray:
    """uint8 frames T×H×W×3 of one random instance of ``action``."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; choose from {list(ACTIONS)}")
    short = min(height, width)
    shape = str(rng.choice(SHAPES))
    size = float(rng.uniform(0.12, 0.2) * short)
    scale = float(rng.uniform(0.45, 1.55))
    inset = min(size * scale, 0.45 * short)  # start with the shape's centre well inside the frame
    scene = _Scene(
        height=height,
        width=width,
        rng=rng,
        shape=shape,
        size=size,
        angle=float(rng.uniform(0, 2 * np.pi)),
        cx=float(rng.uniform(inset, width - inset)),
        cy=float(rng.uniform(inset, height - inset)),
        speed=float(rng.uniform()),
        phase=float(rng.uniform()),
        scale=scale,
    )
    bg_colour = _colour(rng)
    fg, fg_alt = _contrasting(rng, bg_colour), _contrasting(rng, bg_colour)
    background = _background(rng, str(rng.choice(BACKGROUNDS)), height, width, bg_colour)
    noise_sigma = float(rng.uniform(0, 6))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    step = ACTIONS[action]
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        st = step(scene, t)
        frame = background.copy()
        size = scene.size * st["scale"]
        dx, dy = xx - st["cx"], yy - st["cy"]
        c, s = math.cos(st["angle"]), math.sin(st["angle"])
        u = (c * dx + s * dy) / size
        v = (-s * dx + c * dy) / size
        frame[_shape_mask(scene.shape, u, v)] = fg_alt if st["alt"] else fg
        if noise_sigma > 0:
            frame += rng.normal(0, noise_sigma, size=frame.shape).astype(np.float32)
        out[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def write_video(path: Path, frames: np.ndarray, *, fps: int = 25, container: str = "avi") -> None:
    """Encode uint8 T×H×W×3 frames: mpeg4 in .avi, or H.264 in .mp4 (no B-frames)."""
    t, h, w, _ = frames.shape
    with av.open(str(path), mode="w") as out:
        if container == "mp4":
            stream = out.add_stream("libx264", rate=fps)
            stream.options = {"preset": "ultrafast", "crf": "18", "bf": "0"}
        elif container == "avi":
            stream = out.add_stream("mpeg4", rate=fps)
            stream.bit_rate = avi_bit_rate(w, h, fps)
        else:
            raise ValueError(f"container must be 'avi' or 'mp4', got {container!r}")
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


# ---------------------------------------------------------------------------------------------
# Dataset


@dataclass(frozen=True)
class SyntheticSummary:
    root: Path
    videos_dir: Path
    splits_dir: Path
    classes: list[str]
    num_videos: int
    num_train: int
    num_test: int
    test_groups: list[str]
    frames: int
    width: int
    height: int
    fps: int
    container: str
    seconds: float = field(compare=False)


def _crlf(lines: Sequence[str]) -> str:
    return "".join(f"{line}\r\n" for line in lines)


def generate_dataset(
    root: Path,
    *,
    classes: int = 6,
    videos_per_class: int = 12,
    frames: int = 48,
    width: int = 64,
    height: int = 48,
    fps: int = 25,
    seed: int = 0,
    groups: int = 4,
    container: str = "avi",
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SyntheticSummary | None:
    """Write a synthetic UCF101-layout dataset under ``root`` (see module doc); deterministic per ``seed``.

    Video j of a class is ``g{j % groups + 1:02d}_c{j // groups + 1:02d}`` (round-robin over groups).
    ``progress(done, total)`` is called after each video; when ``should_stop()`` turns true between videos the
    function returns None (the split files are written only when every video is).
    """
    start = time.perf_counter()
    names = action_names(classes)
    if container not in ("avi", "mp4"):
        raise ValueError(f"container must be 'avi' or 'mp4', got {container!r}")
    if width % 2 or height % 2 or min(width, height) < 16:
        raise ValueError(f"width and height must be even and at least 16, got {width}x{height}")
    if frames < 1 or fps < 1:
        raise ValueError("frames and fps must be positive")
    if groups < 2:
        raise ValueError(f"groups must be at least 2 (whole groups go to the test list), got {groups}")
    if videos_per_class < 2:
        raise ValueError(f"videos_per_class must be at least 2, got {videos_per_class}")
    n_test_groups = min(groups - 1, max(1, round(groups * 7 / 25)))
    test_groups = {g + 1 for g in range(n_test_groups)}

    root = Path(root)
    videos_dir, splits_dir = root / "videos", root / "splits"
    splits_dir.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Path, str, int, int]] = []
    train_lines, test_lines = [], []
    for label, name in enumerate(names):
        (videos_dir / name).mkdir(parents=True, exist_ok=True)
        for j in range(videos_per_class):
            g, c = j % groups + 1, j // groups + 1
            rel = f"{name}/v_{name}_g{g:02d}_c{c:02d}.{container}"
            jobs.append((videos_dir / rel, name, label, j))
            if g in test_groups:
                test_lines.append(rel)
            else:
                train_lines.append(f"{rel} {label + 1}")

    def make(job: tuple[Path, str, int, int]) -> None:
        path, name, label, j = job
        rng = np.random.default_rng([seed, label, j])
        write_video(path, render_video(name, frames=frames, width=width, height=height, rng=rng), fps=fps, container=container)

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(make, jobs))
    else:
        for done, job in enumerate(jobs, start=1):
            if should_stop is not None and should_stop():
                log.info("synthetic dataset: stopped after %d of %d videos", done - 1, len(jobs))
                return None
            make(job)
            if progress is not None:
                progress(done, len(jobs))

    (splits_dir / "classInd.txt").write_bytes(_crlf([f"{i + 1} {n}" for i, n in enumerate(names)]).encode())
    (splits_dir / "trainlist01.txt").write_bytes(_crlf(train_lines).encode())
    (splits_dir / "testlist01.txt").write_bytes(_crlf(test_lines).encode())
    summary = SyntheticSummary(
        root=root,
        videos_dir=videos_dir,
        splits_dir=splits_dir,
        classes=names,
        num_videos=len(jobs),
        num_train=len(train_lines),
        num_test=len(test_lines),
        test_groups=[f"g{g:02d}" for g in sorted(test_groups)],
        frames=frames,
        width=width,
        height=height,
        fps=fps,
        container=container,
        seconds=time.perf_counter() - start,
    )
    log.info("synthetic dataset: %d videos (%d train / %d test) in %.1fs at %s", summary.num_videos, summary.num_train, summary.num_test, summary.seconds, root)
    return summary


def synthesize(config: SynthesizeConfig, *, on_progress: Callable[[int, int], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> dict[str, Any] | None:
    """The worker's "synthesize" job: render ``config`` (from scratch: deterministic per seed, so a resumed job
    simply renders again), then index and scan it. Returns the dataset's JSON-ready description (classes, counts,
    frames per split, problems, fingerprint, bytes), or None when stopped."""
    import dataclasses

    from ml.config import DataConfig
    from ml.data import index_dataset, scan_index

    try:
        summary = generate_dataset(config.root, classes=config.classes, videos_per_class=config.videos_per_class,
                                   frames=config.frames, width=config.width, height=config.height, fps=config.fps,
                                   seed=config.seed, progress=on_progress, should_stop=should_stop)
    except BaseException:
        shutil.rmtree(config.root, ignore_errors=True)  # a retry renders from scratch; no half set left on disk
        raise
    if summary is None:  # stopped (cancel or worker shutdown): a resumed job renders again from scratch
        shutil.rmtree(config.root, ignore_errors=True)
        return None
    index = scan_index(index_dataset(DataConfig(root=config.root, split=1, subset=1.0)),
                       min_frames=config.min_frames, workers=2)
    size = sum(p.stat().st_size for p in summary.videos_dir.rglob("*") if p.is_file())
    return {"root": str(config.root), "videos": summary.num_videos, "classes": [str(c) for c in index.classes],
            "counts": index.counts(), "frames": index.frame_summary(),
            "problems": [dataclasses.asdict(p) for p in index.problems], "fingerprint": index.fingerprint(),
            "bytes": size, "estimated_bytes": config.estimated_bytes(), "seconds": round(summary.seconds, 3)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The generator's options, shared by ``python -m ml.synthetic`` and ``python -m ml synth``."""
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--classes", type=int, default=6, help=f"1..{len(ACTIONS)}")
    parser.add_argument("--videos-per-class", type=int, default=12)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--container", choices=("avi", "mp4"), default="avi")
    parser.add_argument("--workers", type=int, default=1)


def generate_from_args(args: argparse.Namespace) -> SyntheticSummary:
    return generate_dataset(
        args.root, classes=args.classes, videos_per_class=args.videos_per_class, frames=args.frames, width=args.width,
        height=args.height, fps=args.fps, seed=args.seed, groups=args.groups, container=args.container, workers=args.workers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.synthetic", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        s = generate_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info(
        "wrote %d videos (%d classes: %s), %d train / %d test (test groups %s) to %s in %.1fs",
        s.num_videos, len(s.classes), ", ".join(s.classes), s.num_train, s.num_test, ", ".join(s.test_groups), s.root, s.seconds,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
